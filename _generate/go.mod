module github.com/shrink-llm/shrink/_generate

go 1.26.0

require github.com/mmcloughlin/avo v0.6.0

require (
	golang.org/x/mod v0.36.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/tools v0.45.0 // indirect
)

require github.com/shrink-llm/shrink v0.0.0

replace github.com/shrink-llm/shrink => ../
