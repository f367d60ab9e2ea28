package testshared

import (
	"slices"
	"testing"
)

func TestConvert(t *testing.T) {
	if got, want := Convert[int]([]int64{3, -2, 1 << 40}), []int{3, -2, 1 << 40}; !slices.Equal(got, want) {
		t.Errorf("Convert[int] = %v, want %v", got, want)
	}
	// float32(0.1) widens exactly, not to float64's 0.1.
	if got, want := Convert[float64]([]float32{0.1, -1.5}), []float64{0.10000000149011612, -1.5}; !slices.Equal(got, want) {
		t.Errorf("Convert[float64] = %v, want %v", got, want)
	}
	if got := Convert[float64]([]float32(nil)); got == nil || len(got) != 0 {
		t.Errorf("Convert of nil = %#v, want an empty slice", got)
	}
}
