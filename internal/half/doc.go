// Package half holds the one definition of widening an IEEE 754 binary16
// value to float32. quant (the encodings) and runtime/simd (the kernels'
// pure-Go references) both need it and may import nothing of ours but this
// leaf package, so neither keeps its own copy.
package half
