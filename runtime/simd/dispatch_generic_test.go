//go:build !amd64 || noasm || !gc

package simd

func testFeatureSets() []namedFeatures {
	return []namedFeatures{{"go", features{}}, {"portable", features{portable: true}}}
}
