package tokenizer

// entryHeap adapts a slice of merge candidates that know their own order to
// container/heap: the entry that is less than all others is on top.
type entryHeap[T interface{ less(T) bool }] []T

func (h entryHeap[T]) Len() int           { return len(h) }
func (h entryHeap[T]) Less(i, j int) bool { return h[i].less(h[j]) }
func (h entryHeap[T]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap[T]) Push(x any)        { *h = append(*h, x.(T)) }
func (h *entryHeap[T]) Pop() any {
	s := *h
	e := s[len(s)-1]
	*h = s[:len(s)-1]
	return e
}
