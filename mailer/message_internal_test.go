package mailer

import (
	"encoding/base64"
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

func TestAppendBase64_Lines(t *testing.T) {
	for n := range 200 {
		data := strings.Repeat("жa", n)[:n]
		got := appendBase64([]byte("x"), []byte(data))
		if got[0] != 'x' {
			t.Fatal("overwrote dst")
		}
		lines := strings.Split(string(got[1:]), "\r\n")
		for i, l := range lines {
			if len(l) > 76 || (i < len(lines)-1 && len(l) != 76) {
				t.Fatalf("%d bytes: line %d is %d characters", n, i, len(l))
			}
		}
		dec, err := base64.StdEncoding.DecodeString(strings.Join(lines, ""))
		if err != nil || string(dec) != data {
			t.Fatalf("%d bytes: decoded %q, %v", n, dec, err)
		}
	}
}
