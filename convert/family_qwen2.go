package convert

// qwen2Family is the Llama graph with biases on the q, k and v projections,
// which Qwen2 always has (its config has no attention_bias switch).
func qwen2Family() Family { return llamaFamily{arch: "qwen2", qkvBias: true} }
