package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// splitTable holds random strings over a tricky alphabet (Unicode spaces,
// \r\n, contractions in mixed case, U+017F, marks, emoji, letter-like
// numbers) with the splits Python's `regex` module (which, like Oniguruma,
// supports lookahead and \p classes) gives for the GPT-2, Llama-3 and Qwen2
// patterns, as byte ranges.
var splitTable = []struct {
	s                   string
	gpt2, llama3, qwen2 [][2]int
}{
	{"'5t\u0085ke", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}, {5, 7}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 7}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 7}}},
	{"Ve.drD", [][2]int{{0, 2}, {2, 3}, {3, 6}}, [][2]int{{0, 2}, {2, 6}}, [][2]int{{0, 2}, {2, 6}}},
	{"T'k1  ", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 6}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 6}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 6}}},
	{"\u0085,'LL's\u0009\u21676d6S", [][2]int{{0, 2}, {2, 4}, {4, 6}, {6, 8}, {8, 9}, {9, 13}, {13, 14}, {14, 15}, {15, 16}}, [][2]int{{0, 2}, {2, 4}, {4, 6}, {6, 8}, {8, 9}, {9, 13}, {13, 14}, {14, 15}, {15, 16}}, [][2]int{{0, 2}, {2, 4}, {4, 6}, {6, 8}, {8, 9}, {9, 12}, {12, 13}, {13, 14}, {14, 15}, {15, 16}}},
	{"\u2167  -\U0001f642\u0663se\u3000m", [][2]int{{0, 3}, {3, 4}, {4, 10}, {10, 12}, {12, 14}, {14, 17}, {17, 18}}, [][2]int{{0, 3}, {3, 4}, {4, 10}, {10, 12}, {12, 14}, {14, 18}}, [][2]int{{0, 3}, {3, 4}, {4, 10}, {10, 12}, {12, 14}, {14, 18}}},
	{"-l\u000d\u000a\u3000Ss,-_  's'", [][2]int{{0, 1}, {1, 2}, {2, 4}, {4, 7}, {7, 9}, {9, 12}, {12, 13}, {13, 15}, {15, 16}, {16, 17}}, [][2]int{{0, 2}, {2, 4}, {4, 9}, {9, 12}, {12, 13}, {13, 15}, {15, 16}, {16, 17}}, [][2]int{{0, 2}, {2, 4}, {4, 9}, {9, 12}, {12, 13}, {13, 15}, {15, 16}, {16, 17}}},
	{"t9'Re'k.\U0001f642\u0663\u000b_\u00e9'LL\"", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 7}, {7, 12}, {12, 14}, {14, 15}, {15, 16}, {16, 18}, {18, 19}, {19, 21}, {21, 22}}, [][2]int{{0, 1}, {1, 2}, {2, 5}, {5, 7}, {7, 12}, {12, 14}, {14, 15}, {15, 18}, {18, 21}, {21, 22}}, [][2]int{{0, 1}, {1, 2}, {2, 5}, {5, 7}, {7, 12}, {12, 14}, {14, 15}, {15, 18}, {18, 21}, {21, 22}}},
	{"\u000c  Sm\U0001f642\u00a0", [][2]int{{0, 2}, {2, 5}, {5, 9}, {9, 11}}, [][2]int{{0, 2}, {2, 5}, {5, 9}, {9, 11}}, [][2]int{{0, 2}, {2, 5}, {5, 9}, {9, 11}}},
	{"0v\u200b0\u3000\"\u000d4", [][2]int{{0, 1}, {1, 2}, {2, 5}, {5, 6}, {6, 9}, {9, 10}, {10, 11}, {11, 12}}, [][2]int{{0, 1}, {1, 2}, {2, 5}, {5, 6}, {6, 9}, {9, 11}, {11, 12}}, [][2]int{{0, 1}, {1, 2}, {2, 5}, {5, 6}, {6, 9}, {9, 11}, {11, 12}}},
	{"d8\u0663aV\u3000\u000a", [][2]int{{0, 1}, {1, 4}, {4, 6}, {6, 10}}, [][2]int{{0, 1}, {1, 4}, {4, 6}, {6, 10}}, [][2]int{{0, 1}, {1, 2}, {2, 4}, {4, 6}, {6, 10}}},
	{",EK's\u000c\u000c\u00a0\u000cr", [][2]int{{0, 1}, {1, 3}, {3, 5}, {5, 9}, {9, 10}, {10, 11}}, [][2]int{{0, 3}, {3, 5}, {5, 9}, {9, 11}}, [][2]int{{0, 3}, {3, 5}, {5, 9}, {9, 11}}},
	{"\u00a0kD'1\u0301L", [][2]int{{0, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 8}, {8, 9}}, [][2]int{{0, 4}, {4, 5}, {5, 6}, {6, 9}}, [][2]int{{0, 4}, {4, 5}, {5, 6}, {6, 9}}},
	{"KralT\u0009\u65e5s1", [][2]int{{0, 5}, {5, 6}, {6, 10}, {10, 11}}, [][2]int{{0, 5}, {5, 10}, {10, 11}}, [][2]int{{0, 5}, {5, 10}, {10, 11}}},
	{"\u000dl7_\u0009'ReeR\u000d\u000a", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 10}, {10, 12}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 10}, {10, 12}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 10}, {10, 12}}},
	{" \u000a \u000a.SVr-", [][2]int{{0, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 9}}, [][2]int{{0, 4}, {4, 8}, {8, 9}}, [][2]int{{0, 4}, {4, 8}, {8, 9}}},
	{"8 \u000aL\u00e91\u0009V\u65e5\u2167t8", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 6}, {6, 7}, {7, 8}, {8, 12}, {12, 15}, {15, 16}, {16, 17}}, [][2]int{{0, 1}, {1, 3}, {3, 6}, {6, 7}, {7, 12}, {12, 15}, {15, 16}, {16, 17}}, [][2]int{{0, 1}, {1, 3}, {3, 6}, {6, 7}, {7, 12}, {12, 15}, {15, 16}, {16, 17}}},
	{"\u0009m\"3?3D5", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}}, [][2]int{{0, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}}, [][2]int{{0, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}}},
	{"\u00a04   \"\u65e5\u65e50'Re8D_\U0001f642", [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 7}, {7, 13}, {13, 14}, {14, 15}, {15, 17}, {17, 18}, {18, 19}, {19, 24}}, [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 7}, {7, 13}, {13, 14}, {14, 17}, {17, 18}, {18, 19}, {19, 24}}, [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 7}, {7, 13}, {13, 14}, {14, 17}, {17, 18}, {18, 19}, {19, 24}}},
	{"_\u0009S3r4'Re -1 \u000aa", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 9}, {9, 11}, {11, 12}, {12, 13}, {13, 14}, {14, 15}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 9}, {9, 11}, {11, 12}, {12, 14}, {14, 15}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 9}, {9, 11}, {11, 12}, {12, 14}, {14, 15}}},
	{"_Se\u000b  \u000aM", [][2]int{{0, 1}, {1, 3}, {3, 6}, {6, 7}, {7, 8}}, [][2]int{{0, 3}, {3, 7}, {7, 8}}, [][2]int{{0, 3}, {3, 7}, {7, 8}}},
	{"?t\u000c'LL\u00a0S", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 6}, {6, 8}, {8, 9}}, [][2]int{{0, 2}, {2, 3}, {3, 6}, {6, 9}}, [][2]int{{0, 2}, {2, 3}, {3, 6}, {6, 9}}},
	{"LmE\u65e5l'LLV'Re_lE", [][2]int{{0, 7}, {7, 8}, {8, 11}, {11, 12}, {12, 14}, {14, 15}, {15, 17}}, [][2]int{{0, 7}, {7, 10}, {10, 11}, {11, 14}, {14, 17}}, [][2]int{{0, 7}, {7, 10}, {10, 11}, {11, 14}, {14, 17}}},
	{"rv\u200bD2\u65e572\u00bd5!8", [][2]int{{0, 2}, {2, 5}, {5, 6}, {6, 7}, {7, 10}, {10, 15}, {15, 16}, {16, 17}}, [][2]int{{0, 2}, {2, 6}, {6, 7}, {7, 10}, {10, 14}, {14, 15}, {15, 16}, {16, 17}}, [][2]int{{0, 2}, {2, 6}, {6, 7}, {7, 10}, {10, 11}, {11, 12}, {12, 14}, {14, 15}, {15, 16}, {16, 17}}},
	{"\u3000Ek\"'s\u3000El", [][2]int{{0, 3}, {3, 5}, {5, 7}, {7, 8}, {8, 11}, {11, 13}}, [][2]int{{0, 5}, {5, 7}, {7, 8}, {8, 13}}, [][2]int{{0, 5}, {5, 7}, {7, 8}, {8, 13}}},
	{"\u00e9\u0301dalMV'Re", [][2]int{{0, 2}, {2, 4}, {4, 9}, {9, 10}, {10, 12}}, [][2]int{{0, 2}, {2, 9}, {9, 12}}, [][2]int{{0, 2}, {2, 9}, {9, 12}}},
	{"ek! \u000ark6D0", [][2]int{{0, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 7}, {7, 8}, {8, 9}, {9, 10}}, [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 7}, {7, 8}, {8, 9}, {9, 10}}, [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 7}, {7, 8}, {8, 9}, {9, 10}}},
	{"T\U0001f642\u65e5'\u0301! 0\U0001f642 \u000a68", [][2]int{{0, 1}, {1, 5}, {5, 8}, {8, 12}, {12, 14}, {14, 18}, {18, 19}, {19, 20}, {20, 22}}, [][2]int{{0, 1}, {1, 8}, {8, 12}, {12, 13}, {13, 14}, {14, 18}, {18, 20}, {20, 22}}, [][2]int{{0, 1}, {1, 8}, {8, 12}, {12, 13}, {13, 14}, {14, 18}, {18, 20}, {20, 21}, {21, 22}}},
	{" \U0001f642v\u3000e\u000c\u0301,s5\u0085s2\u2167", [][2]int{{0, 5}, {5, 6}, {6, 9}, {9, 10}, {10, 11}, {11, 14}, {14, 15}, {15, 16}, {16, 18}, {18, 19}, {19, 23}}, [][2]int{{0, 5}, {5, 6}, {6, 10}, {10, 11}, {11, 14}, {14, 15}, {15, 16}, {16, 19}, {19, 23}}, [][2]int{{0, 5}, {5, 6}, {6, 10}, {10, 11}, {11, 14}, {14, 15}, {15, 16}, {16, 19}, {19, 20}, {20, 23}}},
	{"el\u0009V7v'LL3T\u000c\u000d\u000aL", [][2]int{{0, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 9}, {9, 10}, {10, 11}, {11, 13}, {13, 14}, {14, 15}}, [][2]int{{0, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 9}, {9, 10}, {10, 11}, {11, 14}, {14, 15}}, [][2]int{{0, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 9}, {9, 10}, {10, 11}, {11, 14}, {14, 15}}},
	{"3L\u200b\u00a0-\u3000 \",t", [][2]int{{0, 1}, {1, 2}, {2, 5}, {5, 7}, {7, 8}, {8, 11}, {11, 14}, {14, 15}}, [][2]int{{0, 1}, {1, 2}, {2, 5}, {5, 7}, {7, 8}, {8, 11}, {11, 14}, {14, 15}}, [][2]int{{0, 1}, {1, 2}, {2, 5}, {5, 7}, {7, 8}, {8, 11}, {11, 14}, {14, 15}}},
	{"\u0009\u00e9-'s\u0301\u00e9\u000b?\u00bd'R", [][2]int{{0, 1}, {1, 3}, {3, 5}, {5, 6}, {6, 8}, {8, 10}, {10, 11}, {11, 12}, {12, 14}, {14, 15}, {15, 16}}, [][2]int{{0, 3}, {3, 5}, {5, 6}, {6, 10}, {10, 11}, {11, 12}, {12, 14}, {14, 16}}, [][2]int{{0, 3}, {3, 5}, {5, 6}, {6, 10}, {10, 11}, {11, 12}, {12, 14}, {14, 16}}},
	{"4rS89Sd9E\u00858\u00a0l  ", [][2]int{{0, 1}, {1, 3}, {3, 5}, {5, 7}, {7, 8}, {8, 9}, {9, 11}, {11, 12}, {12, 14}, {14, 15}, {15, 17}}, [][2]int{{0, 1}, {1, 3}, {3, 5}, {5, 7}, {7, 8}, {8, 9}, {9, 11}, {11, 12}, {12, 15}, {15, 17}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 7}, {7, 8}, {8, 9}, {9, 11}, {11, 12}, {12, 15}, {15, 17}}},
	{"!t0kd\u0085s9\u00e9t8", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}, {5, 7}, {7, 8}, {8, 9}, {9, 12}, {12, 13}}, [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 8}, {8, 9}, {9, 12}, {12, 13}}, [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 8}, {8, 9}, {9, 12}, {12, 13}}},
	{"e'sZ-\u30009ES5RL8K", [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 9}, {9, 11}, {11, 12}, {12, 14}, {14, 15}, {15, 16}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 9}, {9, 11}, {11, 12}, {12, 14}, {14, 15}, {15, 16}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 9}, {9, 11}, {11, 12}, {12, 14}, {14, 15}, {15, 16}}},
	{".1\u00bd\U0001f642M9_\u00e97\u017f", [][2]int{{0, 1}, {1, 4}, {4, 8}, {8, 9}, {9, 10}, {10, 11}, {11, 13}, {13, 14}, {14, 16}}, [][2]int{{0, 1}, {1, 4}, {4, 9}, {9, 10}, {10, 13}, {13, 14}, {14, 16}}, [][2]int{{0, 1}, {1, 2}, {2, 4}, {4, 9}, {9, 10}, {10, 13}, {13, 14}, {14, 16}}},
	{"D'Re6\U0001f642r\u200b  \u000c.24", [][2]int{{0, 1}, {1, 2}, {2, 4}, {4, 5}, {5, 9}, {9, 10}, {10, 13}, {13, 15}, {15, 16}, {16, 17}, {17, 19}}, [][2]int{{0, 1}, {1, 4}, {4, 5}, {5, 10}, {10, 13}, {13, 15}, {15, 16}, {16, 17}, {17, 19}}, [][2]int{{0, 1}, {1, 4}, {4, 5}, {5, 10}, {10, 13}, {13, 15}, {15, 16}, {16, 17}, {17, 18}, {18, 19}}},
	{"EZs7\u200bLkS\u000d\u06636\u00bdS", [][2]int{{0, 3}, {3, 4}, {4, 7}, {7, 10}, {10, 11}, {11, 16}, {16, 17}}, [][2]int{{0, 3}, {3, 4}, {4, 10}, {10, 11}, {11, 16}, {16, 17}}, [][2]int{{0, 3}, {3, 4}, {4, 10}, {10, 11}, {11, 13}, {13, 14}, {14, 16}, {16, 17}}},
	{"dL9\U0001f642a8\u0009", [][2]int{{0, 2}, {2, 3}, {3, 7}, {7, 8}, {8, 9}, {9, 10}}, [][2]int{{0, 2}, {2, 3}, {3, 8}, {8, 9}, {9, 10}}, [][2]int{{0, 2}, {2, 3}, {3, 8}, {8, 9}, {9, 10}}},
	{"0 6at8t", [][2]int{{0, 1}, {1, 3}, {3, 5}, {5, 6}, {6, 7}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 7}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 7}}},
	{"\u00e9\u2167\u21674Sl", [][2]int{{0, 2}, {2, 9}, {9, 11}}, [][2]int{{0, 2}, {2, 9}, {9, 11}}, [][2]int{{0, 2}, {2, 5}, {5, 8}, {8, 9}, {9, 11}}},
	{"\u000b!  l\u0663VS\u0085v\u00e9", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}, {5, 7}, {7, 9}, {9, 11}, {11, 14}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}, {5, 7}, {7, 9}, {9, 14}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 5}, {5, 7}, {7, 9}, {9, 14}}},
	{"4S\u65e5Sv\u0009r\u000d\U0001f642K\u00e96\u000d\u000a", [][2]int{{0, 1}, {1, 7}, {7, 8}, {8, 9}, {9, 10}, {10, 14}, {14, 17}, {17, 18}, {18, 20}}, [][2]int{{0, 1}, {1, 7}, {7, 9}, {9, 10}, {10, 17}, {17, 18}, {18, 20}}, [][2]int{{0, 1}, {1, 7}, {7, 9}, {9, 10}, {10, 17}, {17, 18}, {18, 20}}},
	{"''Re7s8514's  ", [][2]int{{0, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 10}, {10, 12}, {12, 14}}, [][2]int{{0, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 9}, {9, 10}, {10, 12}, {12, 14}}, [][2]int{{0, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}, {9, 10}, {10, 12}, {12, 14}}},
	{"\u000ds \u000a\u0663S sV?7\u2167vZ", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 6}, {6, 7}, {7, 10}, {10, 11}, {11, 15}, {15, 17}}, [][2]int{{0, 1}, {1, 2}, {2, 4}, {4, 6}, {6, 7}, {7, 10}, {10, 11}, {11, 15}, {15, 17}}, [][2]int{{0, 1}, {1, 2}, {2, 4}, {4, 6}, {6, 7}, {7, 10}, {10, 11}, {11, 12}, {12, 15}, {15, 17}}},
	{"k\u000d\u000a9T2\u000d\u000a\u00bd", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 10}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 8}, {8, 10}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 8}, {8, 10}}},
	{"\u0663'LL'LL'LLe .S'Re\u00e9\u00bd", [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 8}, {8, 9}, {9, 12}, {12, 14}, {14, 15}, {15, 16}, {16, 20}, {20, 22}}, [][2]int{{0, 2}, {2, 5}, {5, 8}, {8, 11}, {11, 12}, {12, 14}, {14, 15}, {15, 18}, {18, 20}, {20, 22}}, [][2]int{{0, 2}, {2, 5}, {5, 8}, {8, 11}, {11, 12}, {12, 14}, {14, 15}, {15, 18}, {18, 20}, {20, 22}}},
	{"s\U0001f6429\u000b11s", [][2]int{{0, 1}, {1, 5}, {5, 6}, {6, 7}, {7, 9}, {9, 10}}, [][2]int{{0, 1}, {1, 5}, {5, 6}, {6, 7}, {7, 9}, {9, 10}}, [][2]int{{0, 1}, {1, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}, {9, 10}}},
	{"tV8\u0009E0R\u00094", [][2]int{{0, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}}, [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}}, [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}}},
	{"\u000d\u000a\u000c\u65e5La\u000d\u000a\U0001f642", [][2]int{{0, 2}, {2, 3}, {3, 8}, {8, 9}, {9, 10}, {10, 14}}, [][2]int{{0, 2}, {2, 8}, {8, 10}, {10, 14}}, [][2]int{{0, 2}, {2, 8}, {8, 10}, {10, 14}}},
	{"\u2167V\u3000_\u000d,", [][2]int{{0, 3}, {3, 4}, {4, 7}, {7, 8}, {8, 9}, {9, 10}}, [][2]int{{0, 3}, {3, 4}, {4, 7}, {7, 9}, {9, 10}}, [][2]int{{0, 3}, {3, 4}, {4, 7}, {7, 9}, {9, 10}}},
	{"\u00bd7\u000a'\u000c\u000bs\u0009\u00850K0rK", [][2]int{{0, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}, {9, 11}, {11, 12}, {12, 13}, {13, 14}, {14, 16}}, [][2]int{{0, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 8}, {8, 9}, {9, 11}, {11, 12}, {12, 13}, {13, 14}, {14, 16}}, [][2]int{{0, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 8}, {8, 9}, {9, 11}, {11, 12}, {12, 13}, {13, 14}, {14, 16}}},
	{"\u0663l69\u200b,D\u000a\u0085\u65e5\u00a01S", [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 9}, {9, 10}, {10, 11}, {11, 13}, {13, 16}, {16, 18}, {18, 19}, {19, 20}}, [][2]int{{0, 2}, {2, 3}, {3, 5}, {5, 9}, {9, 10}, {10, 11}, {11, 16}, {16, 18}, {18, 19}, {19, 20}}, [][2]int{{0, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 9}, {9, 10}, {10, 11}, {11, 16}, {16, 18}, {18, 19}, {19, 20}}},
	{"\u2028\U0001f642v\u0663\u000d\u000aKEm'Re\u3000-\u0663\u21677", [][2]int{{0, 3}, {3, 7}, {7, 8}, {8, 10}, {10, 11}, {11, 12}, {12, 15}, {15, 16}, {16, 18}, {18, 21}, {21, 22}, {22, 28}}, [][2]int{{0, 3}, {3, 8}, {8, 10}, {10, 12}, {12, 15}, {15, 18}, {18, 21}, {21, 22}, {22, 28}}, [][2]int{{0, 3}, {3, 8}, {8, 10}, {10, 12}, {12, 15}, {15, 18}, {18, 21}, {21, 22}, {22, 24}, {24, 27}, {27, 28}}},
	{"8\u00a05\u2167 \u000a\u000cemLs1", [][2]int{{0, 1}, {1, 3}, {3, 7}, {7, 9}, {9, 10}, {10, 14}, {14, 15}}, [][2]int{{0, 1}, {1, 3}, {3, 7}, {7, 9}, {9, 14}, {14, 15}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 7}, {7, 9}, {9, 14}, {14, 15}}},
	{"  3\U0001f642?\U0001f642\u0085vD", [][2]int{{0, 1}, {1, 3}, {3, 12}, {12, 14}, {14, 16}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 12}, {12, 16}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 12}, {12, 16}}},
	{"t,5\u000a8 \u00e9\u2028", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 11}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 11}}, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 8}, {8, 11}}},
	{"\u20281\u000d9-k", [][2]int{{0, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}}, [][2]int{{0, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 8}}, [][2]int{{0, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 8}}},
	{"0\u0009E2t96", [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 7}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 7}}, [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}}},
	{"\u00a0\U0001f642\u200b.\u00e9E", [][2]int{{0, 2}, {2, 10}, {10, 13}}, [][2]int{{0, 2}, {2, 10}, {10, 13}}, [][2]int{{0, 2}, {2, 10}, {10, 13}}},
	{"'Re\u000d\u000aas\u000c'LL", [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 5}, {5, 7}, {7, 8}, {8, 9}, {9, 11}}, [][2]int{{0, 3}, {3, 5}, {5, 7}, {7, 8}, {8, 11}}, [][2]int{{0, 3}, {3, 5}, {5, 7}, {7, 8}, {8, 11}}}, {"I'M you'LL we'Re ſ's 'ſ", nil, nil, nil},
}

func TestSplitRules(t *testing.T) {
	rules := []struct {
		name string
		next func(string, int) int
		want func(i int) [][2]int
	}{
		{"gpt2", nextGPT2, func(i int) [][2]int { return splitTable[i].gpt2 }},
		{"llama3", func(s string, i int) int { return nextLlama3(s, i, 3) }, func(i int) [][2]int { return splitTable[i].llama3 }},
		{"qwen2", func(s string, i int) int { return nextLlama3(s, i, 1) }, func(i int) [][2]int { return splitTable[i].qwen2 }},
	}
	for _, r := range rules {
		for i, tc := range splitTable {
			want := r.want(i)
			if want == nil {
				continue
			}
			var got [][2]int
			scanSplit(tc.s, r.next, func(a, b int) { got = append(got, [2]int{a, b}) })
			if !slices.Equal(got, want) {
				t.Errorf("%s %q: got %v, want %v", r.name, tc.s, got, want)
			}
		}
	}
	// Case-insensitive contractions (incl. U+017F, which folds to s) only in
	// the Llama-3 rule.
	var got []string
	s := splitTable[len(splitTable)-1].s
	scanSplit(s, func(s string, i int) int { return nextLlama3(s, i, 3) }, func(a, b int) { got = append(got, s[a:b]) })
	want := []string{"I", "'M", " you", "'LL", " we", "'Re", " ſ", "'s", " '", "ſ"}
	if !slices.Equal(got, want) {
		t.Errorf("llama3 contractions: got %q, want %q", got, want)
	}
}

// naiveMerge is the reference BPE: repeatedly merge the lowest-ranked
// adjacent pair, leftmost among equals.
func naiveMerge(m *bpeModel, ids []int) []int {
	ids = slices.Clone(ids)
	for {
		best, bestAt := mergeInfo{rank: -1}, -1
		for i := 0; i+1 < len(ids); i++ {
			if mi, ok := m.merges[uint64(ids[i])<<32|uint64(ids[i+1])]; ok && (bestAt < 0 || mi.rank < best.rank) {
				best, bestAt = mi, i
			}
		}
		if bestAt < 0 {
			return ids
		}
		ids[bestAt] = int(best.newID)
		ids = slices.Delete(ids, bestAt+1, bestAt+2)
	}
}

// testBPE builds a small BPE model whose merges can chain in many orders.
func testBPE(t *testing.T) *bpeModel {
	t.Helper()
	vocab := map[string]int{}
	add := func(s string) {
		if _, ok := vocab[s]; !ok {
			vocab[s] = len(vocab)
		}
	}
	for _, c := range "abcd" {
		add(string(c))
	}
	var merges []string
	rng := rand.New(rand.NewPCG(3, 4))
	toks := []string{"a", "b", "c", "d"}
	for len(merges) < 60 {
		a, b := toks[rng.IntN(len(toks))], toks[rng.IntN(len(toks))]
		if len(a)+len(b) > 6 {
			continue
		}
		m := a + " " + b
		if slices.Contains(merges, m) {
			continue
		}
		merges = append(merges, m)
		add(a + b)
		if !slices.Contains(toks, a+b) {
			toks = append(toks, a+b)
		}
	}
	var js strings.Builder
	js.WriteString(`{"type":"BPE","vocab":{`)
	first := true
	for s, id := range vocab {
		if !first {
			js.WriteString(",")
		}
		first = false
		fmt.Fprintf(&js, "%q:%d", s, id)
	}
	js.WriteString(`},"merges":[`)
	for i, m := range merges {
		if i > 0 {
			js.WriteString(",")
		}
		if i%2 == 0 { // exercise both merge spellings
			fmt.Fprintf(&js, "%q", m)
		} else {
			a, b, _ := strings.Cut(m, " ")
			fmt.Fprintf(&js, "[%q,%q]", a, b)
		}
	}
	js.WriteString(`]}`)
	m, err := parseBPE([]byte(js.String()))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBPEMergeMatchesNaive compares the heap merge with the reference on
// random words of many lengths, odd ones included.
func TestBPEMergeMatchesNaive(t *testing.T) {
	m := testBPE(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n < 2000; n++ {
		b := make([]byte, rng.IntN(70))
		for i := range b {
			b[i] = "abcd"[rng.IntN(4)]
		}
		word := string(b)
		got, err := m.tokenize(word, nil)
		if err != nil {
			t.Fatal(err)
		}
		var init []int
		for _, c := range word {
			init = append(init, m.vocab[string(c)])
		}
		if want := naiveMerge(m, init); !slices.Equal(got, want) {
			t.Fatalf("word %q: got %v, want %v", word, got, want)
		}
		again, _ := m.tokenize(word, nil) // from the cache
		if !slices.Equal(again, got) {
			t.Fatalf("word %q: cached %v != %v", word, again, got)
		}
	}
}

func TestBPEUnknownAndFallback(t *testing.T) {
	vocab := `{"<unk>":0,"a":1,"b":2,"<0x41>":3,"<0x42>":4,"ab":5,"##b":6,"a##b":7}`
	tests := []struct {
		name  string
		model string
		word  string
		want  []int
		err   bool
	}{
		{"unk fused", `{"type":"BPE","vocab":` + vocab + `,"merges":[],"unk_token":"<unk>","fuse_unk":true}`, "aXYb", []int{1, 0, 2}, false},
		{"unk not fused", `{"type":"BPE","vocab":` + vocab + `,"merges":[],"unk_token":"<unk>"}`, "aXYb", []int{1, 0, 0, 2}, false},
		{"no unk drops", `{"type":"BPE","vocab":` + vocab + `,"merges":[]}`, "aXb", []int{1, 2}, false},
		{"byte fallback", `{"type":"BPE","vocab":` + vocab + `,"merges":[],"unk_token":"<unk>","byte_fallback":true}`, "aAB", []int{1, 3, 4}, false},
		{"byte fallback partial -> unk", `{"type":"BPE","vocab":` + vocab + `,"merges":[],"unk_token":"<unk>","byte_fallback":true}`, "aC", []int{1, 0}, false},
		{"missing unk", `{"type":"BPE","vocab":` + vocab + `,"merges":[],"unk_token":"<nope>"}`, "aX", nil, true},
		{"merge", `{"type":"BPE","vocab":` + vocab + `,"merges":["a b"]}`, "ab", []int{5}, false},
		{"ignore_merges", `{"type":"BPE","vocab":` + vocab + `,"merges":[],"ignore_merges":true}`, "ab", []int{5}, false},
		{"subword prefix", `{"type":"BPE","vocab":` + vocab + `,"merges":[["a","##b"]],"continuing_subword_prefix":"##"}`, "ab", []int{5}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseBPE([]byte(tc.model))
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.tokenize(tc.word, nil)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLossyUTF8(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"abc", "abc"},
		{"\xe2\x82", "\uFFFD"},                 // truncated 3-byte sequence: one replacement
		{"\xe2\x82A", "\uFFFDA"},               // ...followed by ASCII
		{"\xff\xfe", "\uFFFD\uFFFD"},           // two bad bytes: two replacements
		{"\xf0\x9f\x98", "\uFFFD"},             // truncated emoji
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: ED A0 is not a valid prefix
		{"\xe0\x80", "\uFFFD\uFFFD"},           // overlong: E0 80 invalid second byte
		{"a\xc3", "a\uFFFD"},
	}
	for _, tc := range tests {
		if got := lossyUTF8([]byte(tc.in)); got != tc.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecodeByteFallback(t *testing.T) {
	got := decodeByteFallback([]string{"a", "<0xE2>", "<0x82>", "<0xAC>", "b", "<0xE2>", "<0x82>", "c", "<0x41>"})
	want := []string{"a", "€", "b", "\uFFFD", "\uFFFD", "c", "A"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestApplyBehavior(t *testing.T) {
	// "a-b--c" split on "-".
	s := "a-b--c"
	m, err := compileSplitPattern(hfPattern{String: ptr("-")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		b    splitBehavior
		inv  bool
		want []string
	}{
		{behaviorRemoved, false, []string{"a", "b", "c"}},
		{behaviorIsolated, false, []string{"a", "-", "b", "-", "-", "c"}},
		{behaviorMergedWithPrevious, false, []string{"a-", "b-", "-", "c"}},
		{behaviorMergedWithNext, false, []string{"a", "-b", "-", "-c"}},
		{behaviorContiguous, false, []string{"a", "-", "b", "--", "c"}},
		{behaviorRemoved, true, []string{"-", "-", "-"}},
	}
	for _, tc := range tests {
		var got []string
		for _, p := range splitWith(m, tc.b, tc.inv)([]piece{{s: s}}) {
			got = append(got, p.s)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("behavior %d invert %v: got %q, want %q", tc.b, tc.inv, got, tc.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestPreTokenizers(t *testing.T) {
	tests := []struct {
		name string
		json string
		in   string
		want []string
	}{
		{"metaspace always", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`, "Hey  friend!", []string{"▁Hey", "▁", "▁friend!"}},
		{"metaspace never", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"never","split":false}`, "Hey friend", []string{"Hey▁friend"}},
		{"metaspace legacy", `{"type":"Metaspace","replacement":"▁","add_prefix_space":true}`, "a b", []string{"▁a", "▁b"}},
		{"digits", `{"type":"Digits","individual_digits":true}`, "a123b", []string{"a", "1", "2", "3", "b"}},
		{"digits contiguous", `{"type":"Digits","individual_digits":false}`, "a123b4", []string{"a", "123", "b", "4"}},
		{"whitespace", `{"type":"Whitespace"}`, "Hey, you!  ok", []string{"Hey", ",", "you", "!", "ok"}},
		{"whitespace split", `{"type":"WhitespaceSplit"}`, "Hey, you!\tok", []string{"Hey,", "you!", "ok"}},
		{"bert", `{"type":"BertPreTokenizer"}`, "Hey, you$", []string{"Hey", ",", "you", "$"}},
		{"bytelevel prefix", `{"type":"ByteLevel","add_prefix_space":true,"use_regex":true}`, "hi  there", []string{"Ġhi", "Ġ", "Ġthere"}},
		{"split regex", `{"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"Removed","invert":false}`, "a\u00a0b\u3000 c", []string{"a", "b", "c"}},
		{"sequence", `{"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true}]}`, "ab12 c", []string{"ab", "1", "2", "c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pre, err := parsePreTokenizer([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range pre([]piece{{s: tc.in, atStart: true}}) {
				got = append(got, p.s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMetaspaceFirst(t *testing.T) {
	pre, err := parsePreTokenizer([]byte(`{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true}`))
	if err != nil {
		t.Fatal(err)
	}
	got := pre([]piece{{s: "a b", atStart: true}, {s: "c", atStart: false}})
	var s []string
	for _, p := range got {
		s = append(s, p.s)
	}
	if want := []string{"▁a", "▁b", "c"}; !slices.Equal(s, want) {
		t.Errorf("got %q, want %q", s, want)
	}
}

func TestNormalizers(t *testing.T) {
	tests := []struct {
		json, in, want string
	}{
		{`{"type":"Prepend","prepend":"▁"}`, "", ""},
		{`{"type":"Prepend","prepend":"▁"}`, "a", "▁a"},
		{`{"type":"Replace","pattern":{"String":" "},"content":"▁"}`, "a b  c", "a▁b▁▁c"},
		{`{"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "}`, "a\u00a0\t b", "a b"},
		{`{"type":"NFC"}`, "e\u0301", "é"},
		{`{"type":"NFKC"}`, "ﬁ½", "fi1⁄2"},
		{`{"type":"NFD"}`, "é", "e\u0301"},
		{`{"type":"Lowercase"}`, "ÀB İ ΟΔΟΣ ΣΑ", "àb i\u0307 οδος σα"},
		{`{"type":"Strip","left":true,"right":false}`, "  a  ", "a  "},
		{`{"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"},{"type":"Lowercase"}]}`, "Café", "cafe"},
	}
	for _, tc := range tests {
		n, err := parseNormalizer([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if got := n(tc.in); got != tc.want {
			t.Errorf("%s(%q) = %q, want %q", tc.json, tc.in, got, tc.want)
		}
	}
}

func TestCompileHFRegexRejectsLookaround(t *testing.T) {
	for _, p := range []string{`\s+(?!\S)`, `(?<=a)b`, `a(?=b)`} {
		if _, err := compileHFRegex(p); err == nil || !strings.Contains(err.Error(), "lookaround") {
			t.Errorf("compileHFRegex(%q) error = %v, want one naming the pattern", p, err)
		}
	}
	re, err := compileHFRegex(`[\s\d]+|\w+`)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.FindAllString("a٣\u3000b_é", -1); !slices.Equal(got, []string{"a٣", "\u3000", "b_é"}) {
		t.Errorf("unicode classes: got %q", got)
	}
}

// tinyHF builds a tokenizer.json around a character-level vocab.
func tinyHF(t *testing.T, added string, extra string) *Tokenizer {
	t.Helper()
	var vocab []string
	for i, c := range " abcdefghijklmnopqrstuvwxyz<>/|" {
		vocab = append(vocab, fmt.Sprintf("%q:%d", string(c), i))
	}
	js := `{"added_tokens":[` + added + `],"model":{"type":"BPE","vocab":{` + strings.Join(vocab, ",") + `,"<x>":40,"tok":41},"merges":[]}` + extra + `}`
	tok, err := FromHF([]byte(js), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAddedTokenOptions(t *testing.T) {
	tests := []struct {
		name  string
		added string
		extra string
		text  string
		want  []int
	}{
		{"plain", `{"id":40,"content":"<x>","special":true}`, "", "a<x>b", []int{1, 40, 2}},
		{"longest wins", `{"id":40,"content":"<x>","special":true},{"id":41,"content":"<x>b","special":true}`, "", "a<x>bc", []int{1, 41, 3}},
		{"single word rejects", `{"id":41,"content":"tok","single_word":true}`, "", "atok b", []int{1, 20, 15, 11, 0, 2}},
		{"single word accepts", `{"id":41,"content":"tok","single_word":true}`, "", "a tok b", []int{1, 0, 41, 0, 2}},
		{"lstrip", `{"id":40,"content":"<x>","lstrip":true}`, "", "a  <x> b", []int{1, 40, 0, 2}},
		{"rstrip", `{"id":40,"content":"<x>","rstrip":true}`, "", "a <x>  b", []int{1, 0, 40, 2}},
		{"normalized", `{"id":41,"content":"TOK","normalized":true}`, `,"normalizer":{"type":"Lowercase"}`, "aTokb", []int{1, 41, 2}},
		{"not normalized", `{"id":41,"content":"tok","normalized":false}`, `,"normalizer":{"type":"Lowercase"}`, "aTOKb", []int{1, 20, 15, 11, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tinyHF(t, tc.added, tc.extra)
			got, err := tok.Encode(tc.text, false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
			}
		})
	}
}

func TestPostProcessorsAndConfig(t *testing.T) {
	added := `{"id":40,"content":"<x>","special":true},{"id":41,"content":"tok","special":true}`
	tests := []struct {
		name     string
		extra    string
		config   string
		want     []int
		bos, eos int
	}{
		{"template", `,"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<x>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"tok","type_id":0}}],"special_tokens":{"<x>":{"id":"<x>","ids":[40],"tokens":["<x>"]},"tok":{"id":"tok","ids":[41],"tokens":["tok"]}}}`, "", []int{40, 1, 41}, 40, 41},
		{"roberta", `,"post_processor":{"type":"RobertaProcessing","sep":["tok",41],"cls":["<x>",40]}`, "", []int{40, 1, 41}, 40, 41},
		{"sequence", `,"post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"BertProcessing","sep":["tok",41],"cls":["<x>",40]}]}`, "", []int{40, 1, 41}, 40, 41},
		{"config add_bos", "", `{"bos_token":{"content":"<x>"},"eos_token":"tok","add_bos_token":true,"add_eos_token":true}`, []int{40, 1, 41}, 40, 41},
		{"config no add", "", `{"bos_token":"<x>","eos_token":"tok"}`, []int{1}, 40, 41},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var vocab []string
			for i, c := range " abcdefghijklmnopqrstuvwxyz<>/|" {
				vocab = append(vocab, fmt.Sprintf("%q:%d", string(c), i))
			}
			js := `{"added_tokens":[` + added + `],"model":{"type":"BPE","vocab":{` + strings.Join(vocab, ",") + `,"<x>":40,"tok":41},"merges":[]}` + tc.extra + `}`
			var cfg []byte
			if tc.config != "" {
				cfg = []byte(tc.config)
			}
			tok, err := FromHF([]byte(js), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tok.Encode("a", true)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) || tok.BOS() != tc.bos || tok.EOS() != tc.eos {
				t.Errorf("Encode = %v BOS %d EOS %d, want %v %d %d", got, tok.BOS(), tok.EOS(), tc.want, tc.bos, tc.eos)
			}
			if d, _ := tok.Decode(got, true); d != "a" {
				t.Errorf("Decode(skip special) = %q, want %q", d, "a")
			}
		})
	}
}

func TestDecoders(t *testing.T) {
	tests := []struct {
		json string
		in   []string
		want string
	}{
		{`{"type":"Metaspace","replacement":"▁","prepend_scheme":"always"}`, []string{"▁▁Hey", "▁friend"}, "Hey friend"},
		{`{"type":"Metaspace","replacement":"▁","prepend_scheme":"never"}`, []string{"▁Hey", "▁friend"}, " Hey friend"},
		{`{"type":"Strip","content":" ","start":2,"stop":1}`, []string{"   a  "}, " a "},
		{`{"type":"BPEDecoder","suffix":"</w>"}`, []string{"hel", "lo</w>", "you</w>"}, "hello you"},
		{`{"type":"ByteLevel"}`, []string{"Ġhi", "<|x|>", "Ċ"}, " hi<|x|>\n"},
		{`{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}`, []string{"▁a", "<0xF0>", "<0x9F>", "▁b"}, "a\uFFFD\uFFFD b"},
	}
	for _, tc := range tests {
		d, err := parseDecoder([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if got := strings.Join(d(tc.in), ""); got != tc.want {
			t.Errorf("%s(%q) = %q, want %q", tc.json, tc.in, got, tc.want)
		}
	}
}

func TestFromHFErrors(t *testing.T) {
	model := `"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}`
	tests := []struct {
		name, json string
	}{
		{"not json", `{`},
		{"no model", `{}`},
		{"wordpiece", `{"model":{"type":"WordPiece","vocab":{}}}`},
		{"merge not in vocab", `{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}`},
		{"bad merge", `{"model":{"type":"BPE","vocab":{"a":0},"merges":["a"]}}`},
		{"negative id", `{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}}`},
		{"sparse ids", `{"model":{"type":"BPE","vocab":{"a":9999999},"merges":[]}}`},
		{"lookaround split", `{` + model + `,"pre_tokenizer":{"type":"Split","pattern":{"Regex":"a(?=b)"},"behavior":"Isolated"}}`},
		{"unknown normalizer", `{` + model + `,"normalizer":{"type":"Precompiled"}}`},
		{"unknown decoder", `{` + model + `,"decoder":{"type":"CTC"}}`},
		{"template without $A", `{` + model + `,"post_processor":{"type":"TemplateProcessing","single":[],"special_tokens":{}}}`},
	}
	for _, tc := range tests {
		if _, err := FromHF([]byte(tc.json), nil, nil); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestDecodeErrorsAndAccessors(t *testing.T) {
	tok := tinyHF(t, `{"id":40,"content":"<x>","special":true}`, "")
	if _, err := tok.Decode([]int{1, 999}, false); err == nil {
		t.Error("Decode of unknown id: no error")
	}
	if _, err := tok.Decode([]int{-1}, false); err == nil {
		t.Error("Decode of negative id: no error")
	}
	if tok.Token(40) != "<x>" || tok.Token(-3) != "" || !tok.IsSpecial(40) || tok.IsSpecial(1) {
		t.Error("Token/IsSpecial mismatch")
	}
	// No decoder: tokens joined with spaces, as the library does.
	if d, _ := tok.Decode([]int{1, 2, 40}, false); d != "a b <x>" {
		t.Errorf("Decode without decoder = %q", d)
	}
	if d, _ := tok.Decode([]int{1, 2, 40}, true); d != "a b" {
		t.Errorf("Decode(skip) without decoder = %q", d)
	}
	if !utf8.ValidString(tok.Token(1)) {
		t.Error("invalid token string")
	}
}

// TestStreamDecoderHoldsPartialBytes feeds a byte-fallback emoji one byte
// token at a time: nothing is emitted until the character is complete.
func TestStreamDecoderHoldsPartialBytes(t *testing.T) {
	tok := loadHF(t, "tokenizers", "llama2")
	ids, err := tok.Encode("a 🙂 b", false)
	if err != nil {
		t.Fatal(err)
	}
	d := tok.NewDecoder()
	var outs []string
	for _, id := range ids {
		s, err := d.Next(id)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, s)
	}
	if strings.Join(outs, "")+d.Flush() != "a 🙂 b" {
		t.Fatalf("stream = %q", outs)
	}
	for _, s := range outs {
		if strings.ContainsRune(s, utf8.RuneError) {
			t.Errorf("emitted a partial character: %q", outs)
		}
	}
	// A stream ending mid-character is flushed with replacement characters.
	d = tok.NewDecoder()
	for _, id := range ids[:len(ids)-3] {
		if _, err := d.Next(id); err != nil {
			t.Fatal(err)
		}
	}
	if f := d.Flush(); !strings.Contains(f, "\uFFFD") {
		t.Errorf("Flush of partial character = %q", f)
	}
}
