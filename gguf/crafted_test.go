package gguf

import (
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/internal/ggufcraft"
)

func TestCraftedFilesRefused(t *testing.T) {
	if _, err := parseBytes(ggufcraft.Valid()); err != nil {
		t.Fatalf("the valid base file is refused: %v", err)
	}
	for _, c := range ggufcraft.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			_, err := parseBytes(c.Data)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "gguf: test.gguf: ") || !strings.Contains(msg, c.WantErr) {
				t.Fatalf("error %q: want one line naming the file and containing %q", msg, c.WantErr)
			}
		})
	}
}
