package etl

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Encodings a drop file may be in.
const (
	EncodingUTF8   = "utf-8"
	EncodingCP1251 = "windows-1251"
)

// Limits that keep a hostile or broken file from exhausting memory.
const (
	maxHeaderBytes = 64 << 10
	maxFields      = 256
	maxFieldBytes  = 64 << 10
	// maxRowBytes bounds one row, however many lines it spans: a quote
	// left open would otherwise make the rest of the file one row.
	maxRowBytes = 1 << 20
)

// decoder returns a reader that yields UTF-8 text from r in the given
// encoding, with a UTF-8 byte order mark removed (encoding/csv would keep
// it inside the first header; golang/go#9588).
func decoder(r io.Reader, enc string) (io.Reader, error) {
	switch enc {
	case EncodingUTF8:
		return transform.NewReader(r, unicode.BOMOverride(encoding.Nop.NewDecoder())), nil
	case EncodingCP1251:
		return transform.NewReader(r, charmap.Windows1251.NewDecoder()), nil
	}
	return nil, fmt.Errorf("unknown encoding %q (want %s or %s)", enc, EncodingUTF8, EncodingCP1251)
}

// utf8Checker is an io.Writer that finds out whether everything written
// through it is valid UTF-8. Windows-1251 decoding never fails, so the
// encoding must be decided by the bytes, not by trying (golang/go#29535).
type utf8Checker struct {
	carry   []byte
	invalid bool
}

func (c *utf8Checker) Write(p []byte) (int, error) {
	if c.invalid {
		return len(p), nil
	}
	b := p
	if len(c.carry) > 0 {
		b = append(c.carry, p...)
		c.carry = nil
	}
	// Keep an incomplete rune at the end for the next write.
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		c.invalid = true
		return len(p), nil
	}
	c.carry = append([]byte(nil), b[cut:]...)
	return len(p), nil
}

// Encoding reports the encoding of the bytes written: UTF-8 if they were all
// valid UTF-8, else Windows-1251.
func (c *utf8Checker) Encoding() string {
	if c.invalid || len(c.carry) > 0 {
		return EncodingCP1251
	}
	return EncodingUTF8
}

// csvRow is one data row of a CSV feed, with its fields by column key.
type csvRow struct {
	line   int
	fields []string
	index  map[string]int // column key -> field index
	feed   *feed          // the feed as read, with a source's header names
	// missing, once missingKnown, is the fields the file has no column
	// for (see missingFields): the same for all its rows.
	missing      uint8
	missingKnown bool
}

// fieldColumn ties a column key to the store field it fills.
type fieldColumn[F ~uint8] struct {
	key   string
	field F
}

// missingFields returns the fields of cols that r's file has no column
// for, worked out at its first row.
func missingFields[F ~uint8](r *csvRow, cols []fieldColumn[F]) F {
	if !r.missingKnown {
		for _, c := range cols {
			if _, ok := r.index[c.key]; !ok {
				r.missing |= uint8(c.field)
			}
		}
		r.missingKnown = true
	}
	return F(r.missing)
}

// get returns the trimmed value of a column, or "" if the file has no such
// column or the row is short (1C drops empty trailing columns).
func (r *csvRow) get(key string) string {
	i, ok := r.index[key]
	if !ok || i >= len(r.fields) {
		return ""
	}
	return strings.TrimSpace(r.fields[i])
}

// FileError is a problem with a file as a whole: it is marked failed, and
// only what was read before the problem is loaded (nothing, for a problem
// with its header or its format).
type FileError struct {
	Reason string
}

func (e *FileError) Error() string { return e.Reason }

// RowError is a problem with one row: the row is rejected and the rest of
// the file loads.
type RowError struct {
	Line   int
	Field  string
	Reason string
}

func (e *RowError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("строка %d: %s: %s", e.Line, e.Field, e.Reason)
	}
	return fmt.Sprintf("строка %d: %s", e.Line, e.Reason)
}

// readCSV streams the rows of a CSV feed from r (already decoded to UTF-8).
// The delimiter is detected from the header line (';', ',' or tab), header
// names are matched against the feed's aliases (and passed to onHeader,
// if not nil, as an index of the columns found, with the header's line),
// and fn is called for each data row. A row that cannot be read is passed
// to onBad; a missing required column is a *FileError. An error returned
// by onHeader, fn or onBad stops the read and is returned as is. The row
// passed to fn, and its fields slice, are reused for the next row: fn
// keeps copies, not the row (the field strings themselves are never
// changed).
func readCSV(r io.Reader, f feed, onHeader func(index map[string]int, line int) error,
	fn func(*csvRow) error, onBad func(*RowError) error) error {
	lim := newRunLimit(r, maxRowBytes+maxHeaderBytes)
	br := bufio.NewReaderSize(lim, maxHeaderBytes)
	head, err := br.Peek(maxHeaderBytes)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("read header: %w", err)
	}
	if len(bytes.TrimSpace(head)) == 0 {
		return &FileError{Reason: "файл пуст: нет строки заголовка"}
	}
	nl := bytes.IndexByte(head, '\n')
	if nl < 0 && len(head) == maxHeaderBytes {
		return &FileError{Reason: fmt.Sprintf("в первых %d КиБ нет перевода строки: это не CSV", maxHeaderBytes>>10)}
	}
	if nl < 0 {
		nl = len(head)
	}
	if why := notText(head[:nl], false, "двоичные данные, а не CSV"); why != "" {
		return &FileError{Reason: why}
	}
	cr := csv.NewReader(br)
	cr.Comma = detectDelimiter(head[:nl])
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true

	header, err := cr.Read()
	if err != nil {
		return &FileError{Reason: "заголовок не читается: " + csvReason(err)}
	}
	if lim.tripped {
		return &FileError{Reason: fmt.Sprintf("заголовок длиннее %d КиБ: это не CSV", maxRowBytes>>10)}
	}
	lim.mark()
	header = append([]string(nil), header...) // the reader reuses its slice
	index, err := f.matchHeader(header)
	if err != nil {
		return err
	}
	if onHeader != nil {
		line, _ := cr.FieldPos(0)
		if err := onHeader(index, line); err != nil {
			return err
		}
	}
	row := &csvRow{index: index, feed: &f}
	last := 1 // the line of the last row read
	for {
		rec, err := cr.Read()
		if lim.tripped {
			return longRow(cr, rec, err, last)
		}
		lim.mark()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if e := onBad(&RowError{Line: pe.StartLine, Reason: csvReason(pe)}); e != nil {
					return e
				}
				continue
			}
			return fmt.Errorf("read: %w", err)
		}
		line, _ := cr.FieldPos(0)
		last = line
		if isBlank(rec) {
			continue
		}
		if len(rec) > maxFields {
			if e := onBad(&RowError{Line: line, Reason: fmt.Sprintf("%d значений, больше %d", len(rec), maxFields)}); e != nil {
				return e
			}
			continue
		}
		if i := nulField(rec); i >= 0 {
			if e := onBad(&RowError{Line: line, Field: columnName(header, i), Reason: "нулевой байт: двоичные данные, а не текст"}); e != nil {
				return e
			}
			continue
		}
		if field, n := longField(rec, header); n > 0 {
			if e := onBad(&RowError{Line: line, Field: field, Reason: fmt.Sprintf("значение в %d байт, больше %d", n, maxFieldBytes)}); e != nil {
				return e
			}
			continue
		}
		row.line, row.fields = line, rec
		if err := fn(row); err != nil {
			return err
		}
	}
}

// longRow is the error for a row cut off at maxRowBytes, named by the
// line it began on.
func longRow(cr *csv.Reader, rec []string, err error, last int) error {
	reason := fmt.Sprintf("запись длиннее %d КиБ: не закрыта кавычка?", maxRowBytes>>10)
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe):
		return &FileError{Reason: fmt.Sprintf("строка %d: %s", pe.StartLine, reason)}
	case err == nil && len(rec) > 0:
		line, _ := cr.FieldPos(0)
		return &FileError{Reason: fmt.Sprintf("строка %d: %s", line, reason)}
	}
	return &FileError{Reason: fmt.Sprintf("после строки %d: больше %d КиБ без перевода строки", last, maxRowBytes>>10)}
}

// csvReason says why encoding/csv could not read a row, and on which line
// if the row spans several. Its column is left out: a byte count of the
// decoded text, which is not where an editor shows the character.
func csvReason(err error) string {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	why := pe.Err.Error()
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		why = `кавычка " внутри значения без кавычек: удвойте её ("") или заключите всё значение в кавычки`
	case errors.Is(pe.Err, csv.ErrQuote):
		why = `лишняя или незакрытая кавычка " в значении в кавычках`
	}
	if pe.Line != pe.StartLine { // a quoted value holding line breaks
		return fmt.Sprintf("в строке %d: %s", pe.Line, why)
	}
	return why
}

func isBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func longField(rec, header []string) (string, int) {
	for i, f := range rec {
		if len(f) > maxFieldBytes {
			return columnName(header, i), len(f)
		}
	}
	return "", 0
}

func nulField(rec []string) int {
	for i, f := range rec {
		if strings.IndexByte(f, 0) >= 0 {
			return i
		}
	}
	return -1
}

func columnName(header []string, i int) string {
	if i < len(header) && strings.TrimSpace(header[i]) != "" {
		return strings.TrimSpace(header[i])
	}
	return fmt.Sprintf("column %d", i+1)
}

// detectDelimiter picks the most frequent of ';', tab and ',' outside
// quotes in the header line; 1C writes ';'.
func detectDelimiter(line []byte) rune {
	counts := map[byte]int{}
	quoted := false
	for _, c := range line {
		switch {
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ';' || c == ',' || c == '\t'):
			counts[c]++
		}
	}
	best, n := byte(';'), counts[';']
	for _, c := range []byte{'\t', ','} {
		if counts[c] > n {
			best, n = c, counts[c]
		}
	}
	return rune(best)
}
