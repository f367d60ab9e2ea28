// Package chart draws the sweep's charts (bits per weight against mean KLD
// and against the perplexity ratio) as PNG and SVG.
//
// The charts are laid out on gonum's drawing stack (vg, draw, text) rather
// than with gonum.org/v1/plot itself: that package's init parses a dozen
// embedded fonts in every program that links it, and the CLI, whose run
// command has a tight resident-memory budget, links eval and so this
// package. Fonts are parsed only when a chart is drawn.
package chart
