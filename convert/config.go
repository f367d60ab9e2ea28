package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/safeio"
)

// Size caps of the JSON side files of a checkpoint, read whole: real ones
// are kilobytes (config.json, index) or a few megabytes (tokenizer.json of
// a 150k vocabulary is 7 MB).
const (
	maxConfigBytes    = 4 << 20
	maxIndexBytes     = 64 << 20
	maxTokenizerBytes = 64 << 20
)

// clip cuts a value from the input that an error message quotes, so a
// crafted megabyte-long string does not become a megabyte-long message.
func clip(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	cut := []rune(s[:limit])
	return strings.TrimRight(string(cut[:len(cut)-1]), "\ufffd") + fmt.Sprintf("…(%d bytes)", len(s))
}

// firstErrors joins at most a few messages, saying how many were left out:
// a config that declares 100000 layers must not list every missing tensor.
func firstErrors(errs []string) string {
	const keep = 3
	if len(errs) <= keep {
		return strings.Join(errs, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(errs[:keep], "; "), len(errs)-keep)
}

// HFConfig is a parsed Hugging Face config.json. Values are kept raw so each
// family reads exactly the keys it knows, in either transformers 4 or 5
// spelling; JSON null counts as absent.
type HFConfig struct {
	Path          string   // file path, for error messages
	Architectures []string // "architectures"
	raw           map[string]json.RawMessage
}

// parseHFConfig decodes config.json bytes; path is for messages.
func parseHFConfig(path string, data []byte) (*HFConfig, error) {
	c := &HFConfig{Path: path}
	if err := json.Unmarshal(data, &c.raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.raw == nil {
		return nil, fmt.Errorf("%s: not a JSON object", path)
	}
	if _, err := c.get("architectures", &c.Architectures); err != nil {
		return nil, err
	}
	if len(c.Architectures) == 0 || c.Architectures[0] == "" {
		return nil, fmt.Errorf("%s: config.json: no architectures", path)
	}
	c.Architectures[0] = clip(c.Architectures[0])
	return c, nil
}

func readHFConfig(dir string) (*HFConfig, error) {
	p := dir + string(os.PathSeparator) + "config.json"
	data, err := safeio.ReadFile(p, maxConfigBytes, "a config.json")
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	c, err := parseHFConfig(p, data)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	return c, nil
}

// Has reports whether key is present and not null.
func (c *HFConfig) Has(key string) bool {
	v, ok := c.raw[key]
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// get decodes key into v; false when absent or null.
func (c *HFConfig) get(key string, v any) (bool, error) {
	if !c.Has(key) {
		return false, nil
	}
	if err := json.Unmarshal(c.raw[key], v); err != nil {
		return false, fmt.Errorf("%s: key %q: %w", c.Path, key, err)
	}
	return true, nil
}

// Int reads an integer key, def when absent. A float with an integral value
// (some exporters write 1e-5-style numbers everywhere) is accepted.
func (c *HFConfig) Int(key string, def int) (int, error) {
	var f float64
	ok, err := c.get(key, &f)
	if err != nil || !ok {
		return def, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s: key %q = %v is not an integer", c.Path, key, f)
	}
	return int(f), nil
}

// PositiveInt reads a required integer key that must be > 0.
func (c *HFConfig) PositiveInt(key string) (int, error) {
	if !c.Has(key) {
		return 0, fmt.Errorf("%s: missing %q", c.Path, key)
	}
	v, err := c.Int(key, 0)
	if err != nil {
		return 0, err
	}
	if v <= 0 {
		return 0, fmt.Errorf("%s: %q = %d must be positive", c.Path, key, v)
	}
	return v, nil
}

// intField is a required positive integer key and where it goes.
type intField struct {
	key string
	dst *int
}

// positiveInts reads each field with PositiveInt, stopping at the first
// error.
func (c *HFConfig) positiveInts(fields ...intField) error {
	for _, f := range fields {
		v, err := c.PositiveInt(f.key)
		if err != nil {
			return err
		}
		*f.dst = v
	}
	return nil
}

// getOr decodes key as a T, def when absent (or on an error).
func getOr[T any](c *HFConfig, key string, def T) (T, error) {
	var v T
	ok, err := c.get(key, &v)
	if err != nil || !ok {
		return def, err
	}
	return v, nil
}

// Float reads a number key, def when absent.
func (c *HFConfig) Float(key string, def float64) (float64, error) { return getOr(c, key, def) }

// Bool reads a boolean key, def when absent.
func (c *HFConfig) Bool(key string, def bool) (bool, error) { return getOr(c, key, def) }

// String reads a string key, def when absent.
func (c *HFConfig) String(key, def string) (string, error) { return getOr(c, key, def) }

// IntList reads a key that may hold an int or a list of ints (eos_token_id);
// nil when absent.
func (c *HFConfig) IntList(key string) ([]int, error) {
	if !c.Has(key) {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(c.raw[key], &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(c.raw[key], &many); err != nil {
		return nil, fmt.Errorf("%s: key %q must be an int or a list of ints: %w", c.Path, key, err)
	}
	return many, nil
}

// Object reads a nested object key as its own HFConfig view; nil when absent.
func (c *HFConfig) Object(key string) (*HFConfig, error) {
	if !c.Has(key) {
		return nil, nil
	}
	sub := &HFConfig{Path: c.Path + ":" + key}
	if err := json.Unmarshal(c.raw[key], &sub.raw); err != nil {
		return nil, fmt.Errorf("%s: key %q must be an object: %w", c.Path, key, err)
	}
	return sub, nil
}

// bosEOS reads bos_token_id (-1 when absent) and eos_token_id (int or list).
func (c *HFConfig) bosEOS() (int, []int, error) {
	bos, err := c.Int("bos_token_id", -1)
	if err != nil {
		return 0, nil, err
	}
	eos, err := c.IntList("eos_token_id")
	return bos, eos, err
}

// ropeConfig reads rope theta and llama3 scaling from either
// transformers 5's rope_parameters or transformers 4's rope_theta and
// rope_scaling.
func (c *HFConfig) ropeConfig() (float64, *format.RopeScaling, error) {
	params, err := c.Object("rope_parameters")
	if err != nil {
		return 0, nil, err
	}
	theta, err := c.Float("rope_theta", 10000)
	if err != nil {
		return 0, nil, err
	}
	scaling := params
	if params != nil {
		if theta, err = params.Float("rope_theta", theta); err != nil {
			return 0, nil, err
		}
	}
	if c.Has("rope_scaling") {
		if scaling, err = c.Object("rope_scaling"); err != nil {
			return 0, nil, err
		}
	}
	if theta <= 0 {
		return 0, nil, fmt.Errorf("%s: rope_theta %v must be positive", c.Path, theta)
	}
	if scaling == nil {
		return theta, nil, nil
	}
	typ, err := scaling.String("rope_type", "")
	if err != nil {
		return 0, nil, err
	}
	if typ == "" {
		if typ, err = scaling.String("type", "default"); err != nil {
			return 0, nil, err
		}
	}
	switch typ {
	case "default":
		return theta, nil, nil
	case "llama3":
		rs := &format.RopeScaling{Type: "llama3"}
		var missing []string
		var errs []error
		get := func(key string) float64 {
			if !scaling.Has(key) {
				missing = append(missing, key)
				return 0
			}
			v, err := scaling.Float(key, 0)
			errs = append(errs, err)
			return v
		}
		rs.Factor = get("factor")
		rs.LowFreqFactor = get("low_freq_factor")
		rs.HighFreqFactor = get("high_freq_factor")
		rs.OriginalMaxPositionEmbeddings = int(get("original_max_position_embeddings"))
		if len(missing) > 0 {
			return 0, nil, fmt.Errorf("%s: llama3 rope scaling needs %s", scaling.Path, strings.Join(missing, ", "))
		}
		if err := errors.Join(errs...); err != nil {
			return 0, nil, err
		}
		if rs.Factor <= 0 || rs.LowFreqFactor <= 0 || rs.HighFreqFactor <= rs.LowFreqFactor || rs.OriginalMaxPositionEmbeddings <= 0 {
			return 0, nil, fmt.Errorf("%s: invalid llama3 rope scaling %+v", scaling.Path, *rs)
		}
		return theta, rs, nil
	}
	return 0, nil, fmt.Errorf("%s: rope scaling type %q is not supported (supported: default, llama3)", scaling.Path, clip(typ))
}
