package mailer

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestEscapedBytes(t *testing.T) {
	byByte := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			if c := s[i]; c >= 0x80 || c == '=' {
				n++
			}
		}
		return n
	}
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "=", "ж", "<p>", " ", "\r\n", "€", "\xff"}
	for n := range 500 {
		var b strings.Builder
		for range n % 97 {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		if got, want := escapedBytes(s), byByte(s); got != want {
			t.Fatalf("escapedBytes(%q) = %d, want %d", s, got, want)
		}
	}
}
