// Package textdata owns the plain-text corpus handling shared by calibration
// (convert/) and evaluation (eval/): cutting a corpus into documents at
// separator lines, choosing a range of documents, and framing documents into
// one token stream the way the reference token streams in ../shared were
// made. It imports nothing of ours, so any package may use it without an
// import cycle (eval imports convert, so convert cannot import eval).
package textdata
