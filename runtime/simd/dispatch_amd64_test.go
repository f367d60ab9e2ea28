//go:build amd64 && !noasm

package simd

// testFeatureSets lists the pure-Go path and every assembly path this CPU can
// run, so each is checked against the references.
func testFeatureSets() []namedFeatures {
	sets := []namedFeatures{{"go", features{}}}
	if cpuFeatures.avx2 {
		sets = append(sets, namedFeatures{"avx2", features{avx2: true}})
	}
	if cpuFeatures.avx512 {
		sets = append(sets, namedFeatures{"avx512", features{avx2: true, avx512: true}})
	}
	if cpuFeatures.vnni {
		sets = append(sets, namedFeatures{"avx512vnni", features{avx2: true, avx512: true, vnni: true}})
	}
	return sets
}
