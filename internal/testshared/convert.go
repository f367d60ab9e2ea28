package testshared

// Number is the element types Convert converts between.
type Number interface {
	~int | ~int32 | ~int64 | ~float32 | ~float64
}

// Convert returns s with every element converted to To by Go's conversion
// (int64 shapes to int, float32 values to float64 references, …).
func Convert[To, From Number](s []From) []To {
	out := make([]To, len(s))
	for i, v := range s {
		out[i] = To(v)
	}
	return out
}
