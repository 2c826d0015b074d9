package etl

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// Whether a drop file is text at all is decided from its first bytes, so
// that an archive, a spreadsheet or a picture dropped by mistake is
// refused as such, not with whatever a parser stumbles on first in it.

// sniffBytes is how much of a file's start the checks below look at.
const sniffBytes = 4 << 10

// notText finds in b, the start of a CSV line or of an XML document, the
// first C0 control character other than tab, carriage return and (if
// lines is set) line feed, and returns where it is followed by why, or ""
// if there is none. Neither 1C's CSV nor its XML holds any, in
// Windows-1251 or UTF-8, and XML does not allow them at all. The position
// is given as a 1C administrator's editor shows it: line and character.
func notText(b []byte, lines bool, why string) string {
	i := bytes.IndexFunc(b, func(r rune) bool {
		return r < 0x20 && r != '\t' && r != '\r' && (r != '\n' || !lines)
	})
	if i < 0 {
		return ""
	}
	line := 1 + bytes.Count(b[:i], []byte{'\n'})
	col := 1 + utf8.RuneCount(b[bytes.LastIndexByte(b[:i], '\n')+1:i])
	return fmt.Sprintf("строка %d, символ %d: управляющий символ 0x%02X: %s", line, col, b[i], why)
}

// isUTF16 reports whether b, the start of a file, is UTF-16: a byte order
// mark, or, without one, every other byte 0x00 (Latin letters, digits and
// punctuation) or 0x04 (Cyrillic).
func isUTF16(b []byte) bool {
	if len(b) >= 2 && (b[0] == 0xff && b[1] == 0xfe || b[0] == 0xfe && b[1] == 0xff) {
		return true
	}
	if len(b) < 8 {
		return false
	}
	var high, all [2]int // by parity of the position
	for i, c := range b {
		all[i%2]++
		if c == 0x00 || c == 0x04 {
			high[i%2]++
		}
	}
	for p := range 2 {
		if high[p]*10 >= all[p]*9 && high[1-p]*2 < all[1-p] {
			return true
		}
	}
	return false
}

// formats are the files most often dropped instead of an export, by the
// bytes they start with.
var formats = []struct {
	magic, name string
}{
	{"PK\x03\x04", "архив ZIP (.zip или документ .xlsx, .docx)"},
	{"\x1f\x8b", "архив gzip"},
	{"Rar!\x1a\x07", "архив RAR"},
	{"7z\xbc\xaf\x27\x1c", "архив 7-Zip"},
	{"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "документ Office 97-2003 (.xls, .doc)"},
	{"%PDF-", "документ PDF"},
}

// notExport names the format of a file that starts with b if it is one
// of formats, or returns "".
func notExport(b []byte) string {
	for _, f := range formats {
		if bytes.HasPrefix(b, []byte(f.magic)) {
			return f.name
		}
	}
	return ""
}
