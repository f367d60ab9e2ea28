//go:build !amd64 || noasm || !gc

package lowrank

const kernelFMA = false

const nr = 8

func microKernel(k int, a, b, c []float64, ldc int, acc bool) { microKernelGo(k, a, b, c, ldc, acc) }

func dotAxpy(row, x, y []float64, s float64) float64 { return dotAxpyGo(row, x, y, s) }
