package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// apiError is an OpenAI-style error: {"error": {"message", "type", "param", "code"}}.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

// Error types of the OpenAI API.
const (
	errInvalidRequest = "invalid_request_error"
	errAuth           = "authentication_error"
	errServer         = "server_error"
	errUnavailable    = "service_unavailable"
)

func badRequest(param, format string, a ...any) *apiError {
	e := &apiError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, a...), Type: errInvalidRequest}
	if param != "" {
		e.Param = &param
	}
	return e
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

// request is the union of the completion and chat completion bodies: the
// fields shrink uses. Unknown fields are ignored, as OpenAI clients send
// many; known fields with the wrong type are errors.
type request struct {
	Model               string          `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	Seed                *int64          `json:"seed"`
	Stop                json.RawMessage `json:"stop"`
	Stream              bool            `json:"stream"`
	N                   *int            `json:"n"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// decodeRequest parses a body, turning decoder errors into messages that
// name the field.
func decodeRequest(body []byte) (*request, *apiError) {
	var r request
	if err := json.Unmarshal(body, &r); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return nil, badRequest(te.Field, "field %q: got a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type.String()))
		case errors.As(err, &se):
			return nil, badRequest("", "malformed JSON body at byte %d: %v", se.Offset, se)
		default:
			return nil, badRequest("", "malformed JSON body: %v", err)
		}
	}
	return &r, nil
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "float"):
		return "a number"
	case goType == "bool":
		return "a boolean"
	case goType == "string":
		return "a string"
	}
	return "an object"
}

// stops parses "stop": null, a string or an array of up to 4 strings.
func (r *request) stops() ([]string, *apiError) {
	if len(r.Stop) == 0 || string(r.Stop) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(r.Stop, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(r.Stop, &many); err != nil {
		return nil, badRequest("stop", "field \"stop\": want a string or an array of strings")
	}
	if len(many) > 4 {
		return nil, badRequest("stop", "field \"stop\": at most 4 stop strings, got %d", len(many))
	}
	out := many[:0]
	for _, s := range many {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// promptText parses "prompt": a string or an array of one string.
func (r *request) promptText() (string, *apiError) {
	if len(r.Prompt) == 0 || string(r.Prompt) == "null" {
		return "", badRequest("prompt", "field \"prompt\" is required")
	}
	var s string
	if err := json.Unmarshal(r.Prompt, &s); err == nil {
		return s, nil
	}
	var arr []string
	if err := json.Unmarshal(r.Prompt, &arr); err != nil || len(arr) != 1 {
		return "", badRequest("prompt", "field \"prompt\": want a string (or an array of exactly one string)")
	}
	return arr[0], nil
}

// text is a message's content: a string, or an array of {"type": "text",
// "text": ...} parts, concatenated.
func (m *chatMessage) text(i int) (string, *apiError) {
	param := fmt.Sprintf("messages[%d].content", i)
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", badRequest(param, "field %q: want a string or an array of text parts", param)
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", badRequest(param, "field %q: content part of type %q is not supported (text only)", param, p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// Response bodies.

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type message struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type choice struct {
	Index        int      `json:"index"`
	Text         *string  `json:"text,omitempty"`
	Message      *message `json:"message,omitempty"`
	Delta        *delta   `json:"delta,omitempty"`
	Logprobs     any      `json:"logprobs"`
	FinishReason *string  `json:"finish_reason"`
}

type response struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   *usage   `json:"usage,omitempty"`
}
