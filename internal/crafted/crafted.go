package crafted

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/demo"
	"github.com/shrink-llm/shrink/quant"
)

// Case is one invocation of shrink on a crafted input.
type Case struct {
	Name     string   // unique, also the case's folder name
	Category string   // config, tokenizer, safetensors, weights, shrink, text, flags, output
	Args     []string // shrink's arguments (without the program name)
	// Accept is empty when the input must be refused (exit 1, or 2 with
	// Usage); otherwise the reason why succeeding is right.
	Accept string
	Usage  bool
	// OutDir is where the command may write; after a failure it must be
	// empty, after a success it may hold only the files in Outputs.
	OutDir  string
	Outputs []string
	// Bytes is the size of the crafted input, for the memory bound.
	Bytes int64
}

type gen struct {
	dir   string
	base  string // the demo model folder, written once
	q8    string // the demo model converted to q8
	cases []Case
	err   error
}

// Generate writes the corpus under dir (which must exist and be empty) and
// returns its cases in a fixed order.
func Generate(dir string) ([]Case, error) {
	g := &gen{dir: dir, base: filepath.Join(dir, "base", demo.Name)}
	if err := os.CopyFS(g.base, demo.FS()); err != nil {
		return nil, err
	}
	g.q8 = filepath.Join(dir, "base", "demo-q8.shrink")
	if err := convertBase(g.base, g.q8); err != nil {
		return nil, err
	}
	g.configCases()
	g.tokenizerCases()
	g.safetensorsCases()
	g.weightCases()
	g.shrinkCases()
	g.textCases()
	g.flagCases()
	g.outputCases()
	return g.cases, g.err
}

func convertBase(src, out string) error {
	m, err := convert.Open(src, convert.OpenOptions{})
	if err != nil {
		return err
	}
	defer m.Close()
	plan, err := convert.MakePlan(m.Config, m.Tensors, convert.Policy{Quant: quant.Q8})
	if err != nil {
		return err
	}
	_, err = convert.Convert(context.Background(), m, plan, out, convert.Options{Workers: 1})
	return err
}

// caseDir makes the case's folder and its empty output folder.
func (g *gen) caseDir(name string) (dir, out string) {
	dir = filepath.Join(g.dir, fmt.Sprintf("%03d-%s", len(g.cases), name))
	out = filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil && g.err == nil {
		g.err = err
	}
	return dir, out
}

func (g *gen) check(err error) {
	if err != nil && g.err == nil {
		g.err = err
	}
}

func (g *gen) add(c Case) {
	c.Name = fmt.Sprintf("%03d-%s", len(g.cases), c.Name)
	g.cases = append(g.cases, c)
}

// modelCopy makes a model folder for a case: the demo's files linked (not
// copied) except those in replace, written as given (nil: left out).
func (g *gen) modelCopy(dir string, replace map[string][]byte) string {
	m := filepath.Join(dir, "model")
	g.check(os.MkdirAll(m, 0o755))
	entries, err := os.ReadDir(g.base)
	g.check(err)
	for _, e := range entries {
		if _, ok := replace[e.Name()]; ok {
			continue
		}
		g.check(os.Symlink(filepath.Join(g.base, e.Name()), filepath.Join(m, e.Name())))
	}
	for name, b := range replace {
		if b != nil {
			g.check(os.WriteFile(filepath.Join(m, name), b, 0o644))
		}
	}
	return m
}

func (g *gen) read(p string) []byte {
	b, err := os.ReadFile(p)
	g.check(err)
	return b
}

// convertCase adds `convert MODEL -o OUT` on a model folder with replaced
// files.
func (g *gen) convertCase(cat, name string, replace map[string][]byte, accept string, extra ...string) {
	dir, out := g.caseDir(name)
	m := g.modelCopy(dir, replace)
	var size int64
	for _, b := range replace {
		size += int64(len(b))
	}
	c := Case{Name: name, Category: cat, Args: append([]string{"convert", m, "-o", filepath.Join(out, "out.shrink")}, extra...),
		Accept: accept, OutDir: out, Bytes: size}
	if accept != "" {
		c.Outputs = []string{"out.shrink"}
	}
	g.add(c)
}

func (g *gen) configCases() {
	var cfg map[string]any
	g.check(json.Unmarshal(g.read(filepath.Join(g.base, "config.json")), &cfg))
	with := func(key string, v any) []byte {
		c := map[string]any{}
		for k, x := range cfg {
			c[k] = x
		}
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		b, _ := json.Marshal(c)
		return b
	}
	type kv struct {
		key string
		v   any
	}
	var edits []kv
	for _, key := range []string{"num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size", "max_position_embeddings", "head_dim"} {
		for _, v := range []any{0, -1, 1e5, 1e6, 1e9, 1e12, 1 << 40, 2.5, "12", json.RawMessage("null"), json.RawMessage("1e400"), json.RawMessage("[]")} {
			edits = append(edits, kv{key, v})
		}
	}
	for _, e := range edits {
		name := fmt.Sprintf("config-%s-%v", e.key, e.v)
		if r, ok := e.v.(json.RawMessage); ok {
			name = fmt.Sprintf("config-%s-%s", e.key, r)
		}
		var b []byte
		if r, ok := e.v.(json.RawMessage); ok {
			b = bytes.Replace(with(e.key, 1), []byte(fmt.Sprintf(`"%s":1`, e.key)), []byte(fmt.Sprintf(`"%s":%s`, e.key, r)), 1)
		} else {
			b = with(e.key, e.v)
		}
		accept := ""
		raw := ""
		if r, ok := e.v.(json.RawMessage); ok {
			raw = string(r)
		}
		switch {
		case e.key == "max_position_embeddings" && (e.v == 1e5 || e.v == 1e6):
			accept = "a long declared context is only an upper bound: nothing is sized by it until a session asks for tokens"
		case e.key == "head_dim" && raw == "null":
			accept = "null counts as absent: head_dim defaults to hidden_size / heads"
		}
		g.convertCase("config", name, map[string][]byte{"config.json": b}, accept)
	}
	long := strings.Repeat("A", 1<<20)
	rope := func(v any) []byte { return with("rope_scaling", v) }
	m0 := map[string][]byte{
		"config-arch-1MB":              with("architectures", []string{long}),
		"config-arch-empty":            with("architectures", []string{}),
		"config-arch-missing":          with("architectures", nil),
		"config-not-json":              []byte(`{"architectures":`),
		"config-null":                  []byte(`null`),
		"config-empty":                 []byte(``),
		"config-array":                 []byte(`[1,2,3]`),
		"config-deep":                  []byte(strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)),
		"config-rope-llama3-no-keys":   rope(map[string]any{"rope_type": "llama3"}),
		"config-rope-unknown-type":     rope(map[string]any{"rope_type": long}),
		"config-rope-factor-nan":       bytes.Replace(rope(map[string]any{"rope_type": "llama3", "factor": 1, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}), []byte(`"factor":1`), []byte(`"factor":NaN`), 1),
		"config-rope-theta-negative":   with("rope_parameters", map[string]any{"rope_theta": -1, "rope_type": "default"}),
		"config-eps-string":            with("rms_norm_eps", "tiny"),
		"config-eos-out-of-vocab":      with("eos_token_id", 1<<40),
		"config-bos-negative":          with("bos_token_id", -7),
		"config-hidden-act-unknown":    with("hidden_act", "frobnicate"),
		"config-tied-not-bool":         with("tie_word_embeddings", "yes"),
		"config-sliding-window-on":     with("use_sliding_window", true),
		"config-gpt2-arch-n_layer-1e9": with("architectures", []string{"GPT2LMHeadModel"}),
	}
	// Map cases run in sorted order here and below, so the case numbers stay fixed.
	for _, name := range slices.Sorted(maps.Keys(m0)) {
		b := m0[name]
		g.convertCase("config", name, map[string][]byte{"config.json": b}, "")
	}
	// The GPT-2 family reads n_layer & co.
	gpt := map[string]any{"architectures": []string{"GPT2LMHeadModel"}, "n_layer": 1e9, "n_embd": 128, "n_head": 4, "vocab_size": 4096, "n_positions": 512}
	b, _ := json.Marshal(gpt)
	g.convertCase("config", "config-gpt2-n_layer-1e9", map[string][]byte{"config.json": b}, "")
	g.specialFiles("config", "config.json")
	dir, out := g.caseDir("config-truncated")
	full := g.read(filepath.Join(g.base, "config.json"))
	m := g.modelCopy(dir, map[string][]byte{"config.json": full[:len(full)/2]})
	g.add(Case{Name: "config-truncated", Category: "config", Args: []string{"convert", m, "-o", filepath.Join(out, "o.shrink")}, OutDir: out})
}

// specialFiles adds cases where the named file of the model folder is a
// symlink to /dev/zero, a named pipe, a directory or sparse and huge.
func (g *gen) specialFiles(cat, name string) {
	for _, kind := range []string{"devzero", "fifo", "dir", "huge"} {
		cname := cat + "-" + strings.TrimSuffix(name, ".json") + "-" + kind
		dir, out := g.caseDir(cname)
		m := g.modelCopy(dir, map[string][]byte{name: nil})
		g.notAFile(filepath.Join(m, name), kind)
		g.add(Case{Name: cname, Category: cat, Args: []string{"convert", m, "-o", filepath.Join(out, "o.shrink")}, OutDir: out})
	}
}

// notAFile puts at p what a reader of regular files must refuse: kind
// devzero is a symlink to /dev/zero, fifo a named pipe, dir a directory,
// huge a sparse 1 GiB file.
func (g *gen) notAFile(p, kind string) {
	switch kind {
	case "devzero":
		g.check(os.Symlink("/dev/zero", p))
	case "fifo":
		g.check(syscall.Mkfifo(p, 0o644))
	case "dir":
		g.check(os.Mkdir(p, 0o755))
	case "huge":
		f, err := os.Create(p)
		g.check(err)
		if f != nil {
			g.check(f.Truncate(1 << 30)) // sparse: no disk used
			f.Close()
		}
	default:
		panic("notAFile: kind " + kind)
	}
}

func (g *gen) tokenizerCases() {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	m1 := map[string]string{
		"tok-not-json":         `{"model":`,
		"tok-null":             `null`,
		"tok-empty":            ``,
		"tok-empty-vocab":      `{"model":{"type":"WordLevel","vocab":{}}}`,
		"tok-merges-unknown":   `{"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["x y"]}}`,
		"tok-id-1e12":          `{"model":{"type":"BPE","vocab":{"a":1000000000000}}}`,
		"tok-id-negative":      `{"model":{"type":"BPE","vocab":{"a":-1}}}`,
		"tok-id-past-vocab":    `{"model":{"type":"BPE","vocab":{"a":0,"b":4096}}}`,
		"tok-model-unknown":    `{"model":{"type":"Frobnicate"}}`,
		"tok-normalizer-unk":   `{"normalizer":{"type":"Frobnicate"},"model":{"type":"BPE"}}`,
		"tok-pretokenizer-unk": `{"pre_tokenizer":{"type":"Frobnicate"},"model":{"type":"BPE"}}`,
		"tok-decoder-unknown":  `{"decoder":{"type":"Frobnicate"},"model":{"type":"BPE"}}`,
		"tok-postproc-unknown": `{"post_processor":{"type":"Frobnicate"},"model":{"type":"BPE"}}`,
		"tok-deep-nesting":     `{"model":{"type":"BPE","vocab":` + deep + `}}`,
		"tok-added-id-huge":    `{"added_tokens":[{"id":99999999999,"content":"<x>","special":true}],"model":{"type":"BPE","vocab":{"a":0}}}`,
		"tok-regex-bad":        `{"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(("},"behavior":"Isolated"},"model":{"type":"BPE","vocab":{"a":0}}}`,
		"tok-string-1MB":       `{"model":{"type":"BPE","vocab":{"` + strings.Repeat("a", 1<<20) + `":99999}}}`,
	}
	for _, name := range slices.Sorted(maps.Keys(m1)) {
		b := m1[name]
		g.convertCase("tokenizer", name, map[string][]byte{"tokenizer.json": []byte(b)}, "")
	}
	m2 := map[string]string{
		"tokcfg-not-json": `{"bos_token":`,
		"tokcfg-null":     `null`,
		"tokcfg-array":    `[]`,
	}
	for _, name := range slices.Sorted(maps.Keys(m2)) {
		b := m2[name]
		g.convertCase("tokenizer", name, map[string][]byte{"tokenizer_config.json": []byte(b)}, "")
	}
	g.convertCase("tokenizer", "tok-missing", map[string][]byte{"tokenizer.json": nil}, "")
	g.convertCase("tokenizer", "tok-broken-no-tokenizer", map[string][]byte{"tokenizer.json": []byte(`null`)},
		"--no-tokenizer asks for a weights-only file, so the broken tokenizer is not read", "--no-tokenizer")
	g.specialFiles("tokenizer", "tokenizer.json")
	g.specialFiles("tokenizer", "tokenizer_config.json")
}

func (g *gen) safetensorsCases() {
	st := g.read(filepath.Join(g.base, "model.safetensors"))
	hlen := binary.LittleEndian.Uint64(st)
	hdr := st[8 : 8+hlen]
	for _, n := range []int{0, 4, 8, 9, 100, int(hlen) + 8, int(hlen) + 9, len(st) / 2, len(st) - 1} {
		g.convertCase("safetensors", fmt.Sprintf("st-truncated-%d", n), map[string][]byte{"model.safetensors": st[:n]}, "")
	}
	withLen := func(l uint64) []byte {
		b := bytes.Clone(st)
		binary.LittleEndian.PutUint64(b, l)
		return b
	}
	for _, l := range []uint64{1 << 63, 1<<64 - 1, uint64(len(st)), hlen - 1} {
		g.convertCase("safetensors", fmt.Sprintf("st-header-length-%d", l), map[string][]byte{"model.safetensors": withLen(l)}, "")
	}
	// Header edits that keep its length, so the data stays in place.
	edit := func(old, new string) []byte {
		h := bytes.Replace(hdr, []byte(old), []byte(new), 1)
		if len(h) != len(hdr) {
			pad := len(hdr) - len(h)
			if pad < 0 {
				return nil
			}
			h = append(h, bytes.Repeat([]byte(" "), pad)...)
		}
		b := bytes.Clone(st)
		copy(b[8:], h)
		return b
	}
	m3 := map[string][2]string{
		"st-dtype-unknown": {`"F32"`, `"X9X"`},
		"st-dtype-int":     {`"F32"`, `"I32"`},
		"st-not-json":      {`{`, `[`},
	}
	for _, name := range slices.Sorted(maps.Keys(m3)) {
		e := m3[name]
		if b := edit(e[0], e[1]); b != nil {
			g.convertCase("safetensors", name, map[string][]byte{"model.safetensors": b}, "")
		}
	}
	// Offsets and shapes rewritten through the parsed header.
	var h map[string]json.RawMessage
	g.check(json.Unmarshal(hdr, &h))
	first := ""
	for k := range h {
		if k != "__metadata__" && (first == "" || k < first) {
			first = k
		}
	}
	m4 := map[string]string{
		"st-shape-overflow":    `{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}`,
		"st-shape-negative":    `{"dtype":"F32","shape":[-1,128],"data_offsets":[0,512]}`,
		"st-offsets-backwards": `{"dtype":"F32","shape":[1],"data_offsets":[8,4]}`,
		"st-offsets-past-end":  `{"dtype":"F32","shape":[1],"data_offsets":[1099511627776,1099511627780]}`,
		"st-offsets-overlap":   `{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`,
		"st-entry-null":        `null`,
		"st-shape-huge-layers": `{"dtype":"F32","shape":[1000000000,1000000000],"data_offsets":[0,4]}`,
	}
	for _, name := range slices.Sorted(maps.Keys(m4)) {
		entry := m4[name]
		h2 := map[string]json.RawMessage{}
		for k, v := range h {
			h2[k] = v
		}
		h2[first] = json.RawMessage(entry)
		if name == "st-offsets-overlap" {
			h2["extra.weight"] = json.RawMessage(entry)
		}
		nh, _ := json.Marshal(h2)
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(nh)))
		b = append(append(b, nh...), st[8+hlen:]...)
		g.convertCase("safetensors", name, map[string][]byte{"model.safetensors": b}, "")
	}
	// A sharded index naming files outside the folder.
	m5 := map[string]string{
		"st-index-traversal": `{"weight_map":{"model.embed_tokens.weight":"../../etc/passwd"}}`,
		"st-index-absolute":  `{"weight_map":{"model.embed_tokens.weight":"/dev/zero"}}`,
		"st-index-empty":     `{"weight_map":{}}`,
		"st-index-null":      `null`,
		"st-index-missing":   `{"weight_map":{"model.embed_tokens.weight":"nope.safetensors"}}`,
	}
	for _, name := range slices.Sorted(maps.Keys(m5)) {
		idx := m5[name]
		g.convertCase("safetensors", name, map[string][]byte{"model.safetensors": nil, "model.safetensors.index.json": []byte(idx)}, "")
	}
	g.specialFiles("safetensors", "model.safetensors")
}

func (g *gen) weightCases() {
	st := g.read(filepath.Join(g.base, "model.safetensors"))
	hlen := binary.LittleEndian.Uint64(st)
	var h map[string]json.RawMessage
	g.check(json.Unmarshal(st[8:8+hlen], &h))
	type entry struct {
		Offsets []int64 `json:"data_offsets"`
	}
	at := func(name string, idx int) int {
		var e entry
		g.check(json.Unmarshal(h[name], &e))
		return 8 + int(hlen) + int(e.Offsets[0]) + 4*idx
	}
	for _, w := range []struct {
		name, tensor string
		idx          int
		bits         uint32
	}{
		{"nan-norm", "model.layers.1.input_layernorm.weight", 5, 0x7fc00000},
		{"inf-proj", "model.layers.0.self_attn.q_proj.weight", 1000, 0x7f800000},
		{"neg-inf-embed", "model.embed_tokens.weight", 77, 0xff800000},
		{"huge-proj", "model.layers.2.mlp.up_proj.weight", 3, 0x7f7fffff},
	} {
		b := bytes.Clone(st)
		binary.LittleEndian.PutUint32(b[at(w.tensor, w.idx):], w.bits)
		for _, q := range []string{"f32", "f16", "bf16", "q8"} {
			accept := ""
			if w.name == "huge-proj" && q == "f32" {
				accept = "the largest finite float32 is a weight like any other at f32"
			}
			g.convertCase("weights", w.name+"-"+q, map[string][]byte{"model.safetensors": b}, accept, "--quant", q, "--embed", q)
		}
		if w.name != "huge-proj" {
			g.convertCase("weights", w.name+"-f32-allowed", map[string][]byte{"model.safetensors": b},
				"--allow-nonfinite asks for non-finite weights to be kept in float encodings", "--quant", "f32", "--embed", "f32", "--allow-nonfinite")
		}
	}
}

// shrinkCases derive .shrink files from the q8 demo file.
func (g *gen) shrinkCases() {
	b := g.read(g.q8)
	f, err := format.Open(g.q8)
	if err != nil {
		g.check(err)
		return
	}
	hdr := f.Header()
	f.Close()
	both := func(name string, data []byte, accept string) {
		for _, cmd := range [][]string{{"inspect", "--verify"}, {"run", "-p", "Once", "-n", "4"}} {
			cname := name + "-" + cmd[0]
			dir, out := g.caseDir(cname)
			p := filepath.Join(dir, "crafted.shrink")
			g.check(os.WriteFile(p, data, 0o644))
			args := append([]string{cmd[0]}, cmd[1:]...)
			args = append(args[:1], append([]string{p}, args[1:]...)...)
			g.add(Case{Name: cname, Category: "shrink", Args: args, Accept: accept, OutDir: out, Bytes: int64(len(data))})
		}
	}
	for _, n := range []int{0, 7, 63, 64, 65, 4096, len(b) / 2, len(b) - 100, len(b) - 1} {
		both(fmt.Sprintf("shrink-truncated-%d", n), b[:n], "")
	}
	// A flipped byte in every kind of item is caught by its checksum.
	for i, t := range []string{"token_embd.weight", "blk.0.attn_q.weight", "blk.3.ffn_down.weight", "output_norm.weight"} {
		for _, tn := range hdr.Tensors {
			if tn.Name == t {
				c := bytes.Clone(b)
				c[tn.Parts[0].Offset+uint64(i*7)] ^= 0x20
				both("shrink-flipped-"+t, c, "")
			}
		}
	}
	hoff := binary.LittleEndian.Uint64(b[16:])
	c := bytes.Clone(b)
	c[hoff+10] ^= 0x01
	both("shrink-flipped-header", c, "")
	for _, e := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"num_layers-1e9", SetConfig("num_layers", 1_000_000_000)},
		{"num_layers-5", SetConfig("num_layers", 5)},
		{"head_dim-2^40", SetConfig("head_dim", int64(1)<<40)},
		{"head_dim-64", SetConfig("head_dim", 64)},
		{"context-1e12", SetConfig("context_length", int64(1e12))},
		{"vocab-2^31", SetConfig("vocab_size", int64(1)<<31)},
		{"hidden-1", SetConfig("hidden_size", 1)},
		{"heads-3", SetConfig("num_heads", 3)},
		{"arch-1MB", SetConfig("arch", strings.Repeat("x", 1<<20))},
		{"tensor-shape-huge", func(h map[string]any) {
			h["tensors"].([]any)[0].(map[string]any)["shape"] = []any{int64(1) << 40, int64(1) << 40}
		}},
		{"tokenizer-kind-unknown", func(h map[string]any) { h["tokenizer_kind"] = "frobnicate" }},
	} {
		both("shrink-header-"+e.name, EditHeader(b, e.edit), "")
	}
	both("shrink-header-norm-eps-huge", EditHeader(b, SetConfig("norm_eps", 1e300)),
		"a finite norm epsilon is a valid setting (it flattens the norms; the output is poor, not undefined)")
	// Encoded values: NaN and Inf q8 scales, a NaN norm, with the part's
	// checksum fixed.
	for _, p := range []struct {
		name, tensor string
		edit         func(d []byte, rows, cols int)
	}{
		{"nan-scale", "blk.0.attn_q.weight", func(d []byte, rows, cols int) {
			binary.LittleEndian.PutUint16(d[(rows*cols+63)/64*64:], 0x7e00)
		}},
		{"inf-scale", "blk.1.ffn_down.weight", func(d []byte, rows, cols int) {
			binary.LittleEndian.PutUint16(d[(rows*cols+63)/64*64+10:], 0xfc00)
		}},
		{"nan-norm", "blk.2.ffn_norm.weight", func(d []byte, rows, cols int) { binary.LittleEndian.PutUint32(d[28:], 0x7fc00000) }},
		{"inf-final-norm", "output_norm.weight", func(d []byte, rows, cols int) { binary.LittleEndian.PutUint32(d[0:], 0x7f800000) }},
	} {
		both("shrink-values-"+p.name, PatchPart(b, hdr, p.tensor, p.edit), "")
	}
	// The model path itself as something other than a regular file.
	for _, kind := range []string{"fifo", "devzero", "dir"} {
		for _, cmd := range [][]string{{"inspect", "--verify"}, {"run", "-p", "Once", "-n", "4"}, {"eval", "--model"}} {
			cname := "shrink-path-" + kind + "-" + cmd[0]
			dir, out := g.caseDir(cname)
			p := filepath.Join(dir, "m.shrink")
			g.notAFile(p, kind)
			args := []string{cmd[0], p}
			if cmd[0] == "eval" {
				args = []string{"eval", "--ref", p, "--model", g.q8, "--text", filepath.Join(g.base, "config.json")}
			} else {
				args = append(args, cmd[1:]...)
			}
			g.add(Case{Name: cname, Category: "shrink", Args: args, OutDir: out})
		}
	}
	// Padding between items is outside every checksum by design (SPEC §2).
	last := hdr.Tensors[len(hdr.Tensors)-1].Parts[0]
	if end := last.Offset + last.Length; end < hoff {
		c := bytes.Clone(b)
		c[end] = 0xff
		both("shrink-padding-byte", c, "bytes in the gaps between items are not data (format SPEC §2), so changing one changes nothing")
	}
}

// SetConfig is a header edit (for EditHeader) that sets one config key.
func SetConfig(key string, v any) func(map[string]any) {
	return func(h map[string]any) { h["config"].(map[string]any)[key] = v }
}

// RewriteHeader returns a copy of the .shrink file b whose JSON header is
// edit's result (any length: the header is the last thing in the file),
// with the header's length and checksum fixed, so the file passes every
// integrity check and reaches the model validation behind them.
func RewriteHeader(b []byte, edit func(hdr []byte) []byte) []byte {
	off := binary.LittleEndian.Uint64(b[16:])
	n := binary.LittleEndian.Uint64(b[24:])
	hdr := edit(bytes.Clone(b[off : off+n]))
	out := append(bytes.Clone(b[:off]), hdr...)
	binary.LittleEndian.PutUint64(out[24:], uint64(len(hdr)))
	binary.LittleEndian.PutUint32(out[32:], format.Checksum(hdr))
	return out
}

// EditHeader is RewriteHeader through the header decoded as JSON (numbers
// kept as written).
func EditHeader(b []byte, edit func(map[string]any)) []byte {
	return RewriteHeader(b, func(raw []byte) []byte {
		var h map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&h); err != nil {
			panic(err) // the base file is ours
		}
		edit(h)
		hdr, err := json.Marshal(h)
		if err != nil {
			panic(err) // edit put something unencodable in the header
		}
		return hdr
	})
}

// PatchPart returns a copy of the .shrink file b (whose header is hdr) with
// the stored bytes of the named tensor's first part edited and that part's
// checksum fixed, so only the model validation can tell.
func PatchPart(b []byte, hdr *format.Header, name string, edit func(d []byte, rows, cols int)) []byte {
	c := bytes.Clone(b)
	for ti, t := range hdr.Tensors {
		if t.Name != name {
			continue
		}
		p := t.Parts[0]
		rows, cols := 1, int(p.Shape[len(p.Shape)-1])
		if len(p.Shape) == 2 {
			rows = int(p.Shape[0])
		}
		d := c[p.Offset : p.Offset+p.Length]
		edit(d, rows, cols)
		sum := format.Checksum(d)
		return EditHeader(c, func(h map[string]any) {
			h["tensors"].([]any)[ti].(map[string]any)["parts"].([]any)[0].(map[string]any)["crc32c"] = sum
		})
	}
	panic("no tensor " + name)
}

func (g *gen) textCases() {
	evalArgs := func(text string, extra ...string) []string {
		return append([]string{"eval", "--ref", g.q8, "--model", g.q8, "--text", text, "--ctx", "16", "--chunks", "1"}, extra...)
	}
	for _, kind := range []string{"devzero", "devzero-link", "fifo", "dir", "missing", "empty", "separators-only", "binary", "one-long-line", "no-newline"} {
		name := "text-" + kind
		dir, out := g.caseDir(name)
		p := filepath.Join(dir, "text.txt")
		accept := ""
		var size int64
		switch kind {
		case "devzero":
			p = "/dev/zero"
		case "devzero-link":
			g.notAFile(p, "devzero")
		case "fifo", "dir":
			g.notAFile(p, kind)
		case "missing":
		case "empty":
			g.check(os.WriteFile(p, nil, 0o644))
		case "separators-only":
			g.check(os.WriteFile(p, []byte("<|endoftext|>\n<|endoftext|>\n"), 0o644))
		case "binary":
			b := make([]byte, 1<<16)
			for i := range b {
				b[i] = byte(i*131 + i>>8)
			}
			g.check(os.WriteFile(p, b, 0o644))
			size, accept = int64(len(b)), "any bytes are text to a byte-level tokenizer: invalid UTF-8 is encoded through byte fallback"
		case "one-long-line":
			b := bytes.Repeat([]byte("once upon a time "), 1<<16)
			g.check(os.WriteFile(p, b, 0o644))
			size, accept = int64(len(b)), "a 1 MiB document without separators is one document, read in bounded pieces; --chunks 1 tokenizes it only"
		case "no-newline":
			g.check(os.WriteFile(p, []byte("Once upon a time there was a cat who liked to sit in the sun"), 0o644))
			accept = "a file without a final newline is still text"
		}
		g.add(Case{Name: name, Category: "text", Args: evalArgs(p), Accept: accept, OutDir: out, Bytes: size})
	}
	// The calibration text and a token file as a link to /dev/zero or a
	// named pipe.
	for _, in := range []struct {
		name, file string
		args       func(p, out string) []string
	}{
		{"calib", "calib.txt", func(p, out string) []string {
			return []string{"convert", g.base, "-o", filepath.Join(out, "o.shrink"), "--lowrank", "whiten", "--rank", "8", "--calib", p}
		}},
		{"tokens", "tokens.safetensors", func(p, _ string) []string {
			return []string{"eval", "--ref", g.q8, "--model", g.q8, "--tokens", p + ":ids", "--ctx", "16"}
		}},
	} {
		for _, kind := range []string{"devzero", "fifo"} {
			name := in.name + "-" + kind
			dir, out := g.caseDir(name)
			p := filepath.Join(dir, in.file)
			g.notAFile(p, kind)
			g.add(Case{Name: name, Category: "text", OutDir: out, Args: in.args(p, out)})
		}
	}
}

func (g *gen) flagCases() {
	_, out := g.caseDir("flags")
	o := filepath.Join(out, "o.shrink")
	for _, f := range []struct {
		name string
		args []string
	}{
		{"unknown-command", []string{"frobnicate"}},
		{"unknown-command-100KB", []string{strings.Repeat("x", 100<<10)}},
		{"unknown-flag", []string{"run", g.q8, "--frobnicate"}},
		{"run-n-negative", []string{"run", g.q8, "-p", "hi", "-n", "-1"}},
		{"run-n-not-number", []string{"run", g.q8, "-p", "hi", "-n", "many"}},
		{"run-threads-negative", []string{"run", g.q8, "-p", "hi", "--threads", "-1"}},
		{"run-threads-maxint", []string{"run", g.q8, "-p", "hi", "--threads", "2147483647"}},
		{"run-threads-1e6", []string{"run", g.q8, "-p", "hi", "--threads", "1000000"}},
		{"run-top-p-2", []string{"run", g.q8, "-p", "hi", "--top-p", "2"}},
		{"run-temp-negative", []string{"run", g.q8, "-p", "hi", "--temp", "-1"}},
		{"run-ids-garbage", []string{"run", g.q8, "--ids", "1,x"}},
		{"run-no-prompt", []string{"run", g.q8}},
		{"eval-ctx-0", []string{"eval", "--ref", g.q8, "--model", g.q8, "--text", "x", "--ctx", "0"}},
		{"eval-threads-negative", []string{"eval", "--ref", g.q8, "--model", g.q8, "--text", "x", "--threads", "-1"}},
		{"eval-threads-maxint", []string{"eval", "--ref", g.q8, "--model", g.q8, "--text", "x", "--threads", "2147483647"}},
		{"eval-chunks-negative", []string{"eval", "--ref", g.q8, "--model", g.q8, "--text", "x", "--chunks", "-1"}},
		{"convert-threads-0", []string{"convert", g.base, "-o", o, "--threads", "0"}},
		{"convert-threads-maxint", []string{"convert", g.base, "-o", o, "--threads", "2147483647"}},
		{"convert-quant-unknown", []string{"convert", g.base, "-o", o, "--quant", "frobnicate"}},
		{"convert-no-output", []string{"convert", g.base}},
		{"convert-tokenizer-conflict", []string{"convert", g.base, "-o", o, "--tokenizer", "t.json", "--no-tokenizer"}},
		{"convert-group-bad", []string{"convert", g.base, "-o", o, "--quant", "q8", "--group", "48"}},
		{"bench-reps-huge", []string{"bench", g.q8, "--reps", "1000000000000"}},
		{"bench-threads-huge", []string{"bench", g.q8, "--threads", "1,1000000"}},
	} {
		// Each case gets its own folder, so a case that writes is the one
		// blamed for it.
		_, own := g.caseDir("flag-" + f.name)
		for i, a := range f.args {
			if a == o {
				f.args[i] = filepath.Join(own, "o.shrink")
			}
		}
		g.add(Case{Name: "flag-" + f.name, Category: "flags", Args: f.args, Usage: true, OutDir: own})
	}
	for _, f := range []struct {
		name string
		args []string
	}{
		{"eval-ctx-maxint", []string{"eval", "--ref", g.q8, "--model", g.q8, "--text", filepath.Join(g.base, "config.json"), "--ctx", "2147483647", "--chunks", "1"}},
		{"bench-pp-huge", []string{"bench", g.q8, "--pp", "1000000000", "--tg", "1", "--reps", "1"}},
		{"bench-tg-huge", []string{"bench", g.q8, "--pp", "8", "--tg", "1000000000000", "--reps", "1"}},
	} {
		g.add(Case{Name: "flag-" + f.name, Category: "flags", Args: f.args, OutDir: out})
	}
	calib := filepath.Join(g.dir, "base", "stories.txt")
	g.check(os.WriteFile(calib, []byte(demo.Stories), 0o644))
	_, cout := g.caseDir("flag-calib-tokens-maxint")
	g.add(Case{Name: "flag-calib-tokens-maxint", Category: "flags", OutDir: cout, Outputs: []string{"o.shrink"},
		Accept: "--calib-tokens is an upper bound: calibration uses the text there is",
		Args:   []string{"convert", g.base, "-o", filepath.Join(cout, "o.shrink"), "--lowrank", "whiten", "--rank", "8", "--calib", calib, "--calib-tokens", "9223372036854775807"}})
	// A huge -n is not a usage error: it is valid until compared with the
	// model's context.
	g.add(Case{Name: "flag-run-n-maxint", Category: "flags", Args: []string{"run", g.q8, "-p", "hi", "-n", "9223372036854775807"}, OutDir: out})
}

func (g *gen) outputCases() {
	for _, n := range []int{200, 250, 255} {
		name := fmt.Sprintf("output-name-%d", n)
		_, out := g.caseDir(name)
		file := strings.Repeat("n", n-len(".shrink")) + ".shrink"
		g.add(Case{Name: name, Category: "output", Args: []string{"convert", g.base, "-o", filepath.Join(out, file)}, OutDir: out,
			Accept: "a name within NAME_MAX is a valid output name; the temporary name is cut to fit", Outputs: []string{file}})
	}
	_, out := g.caseDir("output-name-256")
	g.add(Case{Name: "output-name-256", Category: "output", OutDir: out,
		Args: []string{"convert", g.base, "-o", filepath.Join(out, strings.Repeat("n", 256-len(".shrink"))+".shrink")}})
	_, out = g.caseDir("output-no-dir")
	g.add(Case{Name: "output-no-dir", Category: "output", OutDir: out, Args: []string{"convert", g.base, "-o", filepath.Join(out, "nope", "o.shrink")}})
	_, out = g.caseDir("output-is-dir")
	g.check(os.Mkdir(filepath.Join(out, "d.shrink"), 0o755))
	g.add(Case{Name: "output-is-dir", Category: "output", OutDir: out, Outputs: []string{"d.shrink"}, Args: []string{"convert", g.base, "-o", filepath.Join(out, "d.shrink")}})
	// A file mapped by a reader is replaced by renaming, never rewritten.
	_, out = g.caseDir("output-replace")
	target := filepath.Join(out, "o.shrink")
	g.check(os.WriteFile(target, g.read(g.q8), 0o644))
	g.add(Case{Name: "output-replace", Category: "output", OutDir: out, Outputs: []string{"o.shrink"},
		Accept: "converting over an existing file replaces it atomically by rename", Args: []string{"convert", g.base, "-o", target, "--quant", "f16"}})
}

// Files lists what is in dir, for the leftover check.
func Files(dir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
			if d.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	return names, err
}
