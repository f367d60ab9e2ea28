package format

import "testing"

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layer  int
		stem   Stem
		suffix Suffix
		ok     bool
	}{
		{BlockName(0, AttnQ, Weight), 0, AttnQ, Weight, true},
		{BlockName(17, FFNDown, Bias), 17, FFNDown, Bias, true},
		{Name(TokenEmbd, Weight), -1, TokenEmbd, Weight, true},
		{Name(OutputNorm, Bias), -1, OutputNorm, Bias, true},
		{"blk.3.future_thing.weight", 3, "future_thing", Weight, true},
		{"blk.x.attn_q.weight", -1, "", "", false},
		{"blk.01.attn_q.weight", -1, "", "", false},
		{"blk.-1.attn_q.weight", -1, "", "", false},
		{"blk.2", -1, "", "", false},
		{"token_embd", -1, "", "", false},
		{"token_embd.", -1, "", "", false},
		{".weight", -1, "", "", false},
	} {
		layer, stem, suffix, ok := ParseName(tc.name)
		if layer != tc.layer || stem != tc.stem || suffix != tc.suffix || ok != tc.ok {
			t.Errorf("ParseName(%q) = %d, %q, %q, %v; want %d, %q, %q, %v", tc.name, layer, stem, suffix, ok, tc.layer, tc.stem, tc.suffix, tc.ok)
		}
	}
	if got := BlockName(0, AttnQ, Weight); got != "blk.0.attn_q.weight" {
		t.Errorf("BlockName = %q", got)
	}
	for _, s := range Projections {
		if !s.Projection() {
			t.Errorf("%s is listed as a projection but Projection() is false", s)
		}
	}
	for _, s := range []Stem{TokenEmbd, AttnNorm, FFNNorm, OutputNorm, Output} {
		if s.Projection() {
			t.Errorf("%s is not a projection", s)
		}
	}
}

func TestKindRoles(t *testing.T) {
	for _, tc := range []struct {
		kind     Kind
		roles    []Role
		factored bool
	}{
		{KindDense, []Role{RoleW}, false},
		{"", []Role{RoleW}, false},
		{KindLowRank, []Role{RoleA, RoleB}, true},
		{KindLoRC, []Role{RoleW, RoleA, RoleB}, true},
		{"sparse", nil, false},
	} {
		if got := tc.kind.Roles(); len(got) != len(tc.roles) || (len(got) > 0 && joinRoles(got) != joinRoles(tc.roles)) {
			t.Errorf("%q.Roles() = %v, want %v", tc.kind, got, tc.roles)
		}
		if tc.kind.Factored() != tc.factored {
			t.Errorf("%q.Factored() = %v", tc.kind, !tc.factored)
		}
	}
	if _, ok := kindRoles[""]; ok {
		t.Error("a file may not carry the empty kind")
	}
}
