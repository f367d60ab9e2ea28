package format

import "github.com/shrink-llm/shrink/quant"

// Version is the container version this package writes and reads.
const Version = 1

// ModelConfig holds the architecture hyperparameters every runtime graph
// needs. It is family-neutral: families fill only what applies to them.
type ModelConfig struct {
	Arch             string  `json:"arch"`              // "llama", "qwen2", "gpt2"
	Source           string  `json:"source,omitempty"`  // e.g. "hf:LlamaForCausalLM", "llama2c"
	VocabSize        int     `json:"vocab_size"`        // rows of token_embd
	HiddenSize       int     `json:"hidden_size"`       // model width
	IntermediateSize int     `json:"intermediate_size"` // FFN width
	NumLayers        int     `json:"num_layers"`
	NumHeads         int     `json:"num_heads"`
	NumKVHeads       int     `json:"num_kv_heads"`
	HeadDim          int     `json:"head_dim"`       // usually hidden/heads, explicit in transformers 5
	ContextLength    int     `json:"context_length"` // max positions
	RopeTheta        float64 `json:"rope_theta,omitempty"`
	// RopeScaling is set only for llama3-style frequency scaling.
	RopeScaling    *RopeScaling `json:"rope_scaling,omitempty"`
	NormEps        float64      `json:"norm_eps"`
	NormKind       string       `json:"norm_kind"`  // "rmsnorm" or "layernorm"
	Activation     string       `json:"activation"` // "silu" (SwiGLU) or "gelu_tanh"
	TiedEmbeddings bool         `json:"tied_embeddings"`
	AttnBias       bool         `json:"attn_bias,omitempty"` // q/k/v carry biases (qwen2, gpt2)
	BOS            int          `json:"bos"`                 // -1 when the model has none
	EOS            []int        `json:"eos,omitempty"`       // generation stops at any of these
}

// RopeScaling is Llama 3's piecewise frequency scaling ("rope_type": "llama3").
type RopeScaling struct {
	Type                          string  `json:"type"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// Part is one encoded matrix inside the data section.
type Part struct {
	Role     Role           `json:"role"`     // RoleW, RoleA or RoleB
	Shape    []int64        `json:"shape"`    // [rows, cols] or [n] for 1-D
	Encoding quant.Encoding `json:"encoding"` // how its bytes encode floats
	Offset   uint64         `json:"offset"`   // absolute file offset, 64-byte aligned
	Length   uint64         `json:"length"`   // = Encoding.Size(rows, cols)
	CRC32C   uint32         `json:"crc32c"`   // Castagnoli CRC of the Length bytes
}

// Metrics are the reconstruction errors measured at conversion.
type Metrics struct {
	RelFrobenius float64 `json:"rel_frobenius"` // ||W-Ŵ||_F / ||W||_F
	SNRdB        float64 `json:"snr_db"`        // 10 log10(||W||² / ||W-Ŵ||²); +Inf is stored as 999
	Cosine       float64 `json:"cosine"`
	MaxAbs       float64 `json:"max_abs"`
}

// Tensor is one logical model tensor.
type Tensor struct {
	Name        string   `json:"name"`  // canonical name, e.g. "blk.0.attn_q.weight"
	Shape       []int64  `json:"shape"` // logical shape of the reconstructed tensor
	Kind        Kind     `json:"kind"`  // KindDense, KindLowRank, KindLoRC
	Parts       []Part   `json:"parts"`
	SourceDType string   `json:"source_dtype,omitempty"` // "F32", "F16", "BF16"
	Metrics     *Metrics `json:"metrics,omitempty"`
}

// Blob is an opaque byte section, such as the tokenizer files.
type Blob struct {
	Name        string `json:"name"`                  // e.g. "tokenizer.json", "tokenizer_config.json", "tokenizer.bin"
	Offset      uint64 `json:"offset"`                // absolute file offset, 64-byte aligned
	Length      uint64 `json:"length"`                // stored bytes
	RawLength   uint64 `json:"raw_length"`            // bytes after decompression
	Compression string `json:"compression,omitempty"` // "" or "zstd"
	CRC32C      uint32 `json:"crc32c"`                // of the stored bytes
}

// Header is the JSON document that describes the whole file.
type Header struct {
	Version       int               `json:"version"`
	Config        ModelConfig       `json:"config"`
	TokenizerKind string            `json:"tokenizer_kind"` // TokenizerHF, TokenizerLlama2c, TokenizerSPM, TokenizerGGUF or TokenizerNone
	Metadata      map[string]string `json:"metadata,omitempty"`
	Blobs         []Blob            `json:"blobs"`
	Tensors       []Tensor          `json:"tensors"`
}
