package etl

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"maps"
	"slices"
	"strconv"
)

// Blocks of a purchases export. A purchase line, once loaded, is never
// changed by a later export: one that repeats it adds nothing. 1C
// re-exports the last weeks or the month every night, so most of a
// night's file can be lines loaded before, and parsing them and looking
// each one up is then most of its load.
//
// The reader cuts the rows into blocks where their content says: a row
// whose checksum has its low bits zero ends a block, so the same rows make
// the same blocks wherever they begin in a file. A block all of whose
// rows were read and loaded, none rejected, is recorded by its hash in the
// batch that writes its last row (store.Batch.AddBlock), so the record is
// durable with its lines. A later block with that hash is passed over
// whole: its rows count as duplicates, which is what writing them would
// have counted.
const (
	// blockMask: about one row in 512 ends a block. Smaller blocks skip
	// more of an export whose lines changed here and there, at a lookup
	// a block.
	blockMask = 1<<9 - 1
	// maxBlockRows ends a block whatever its rows hold, which bounds the
	// rows held in memory (some 2 MB). Low enough that an export of a
	// million lines meets it as a larger one does (one block in fifty):
	// at 8192, reached about once in ten million lines, the largest file
	// held the most rows and peaked a few MiB higher.
	maxBlockRows = 2048
	// maxBlockBytes ends a block of rows unusually long (a purchase line
	// is some 100 bytes, so 2,048 of them some 200 KB), which bounds the
	// bytes held whatever the rows.
	maxBlockBytes = 4 << 20
	// blockVersion is part of every block's hash: change it when the
	// parsing of a purchase line changes what it accepts.
	blockVersion = "purchases 2"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blocker cuts rows into blocks, passes over those known and parses the
// others, sending what it makes on in the order of the rows.
type blocker struct {
	known func(hash []byte) (bool, error)
	parse func(*csvRow) (func() (outcome, error), *RowError)
	send  func(parsedRow) error
	skip  int // rows up to this line were loaded by a cut-off load

	rows   []blockRow
	fields []string // the fields of the block's rows, end to end
	sum    hash.Hash
	layout []byte // the columns' positions, hashed first into every block
	clean  bool   // every row of the block so far was read
	size   int    // bytes of the block's fields
	buf    []byte
}

// blockRow is a row of the block: a copy of the row read, its fields in
// the blocker's fields, or why the row could not be read. Rows and fields
// are kept in slices reused from block to block: a row and a slice of
// fields allocated for every row were a tenth of reading an export mostly
// loaded before.
type blockRow struct {
	row csvRow    // the row, if bad is nil
	bad *RowError // why it could not be read
}

func newBlocker(known func([]byte) (bool, error), parse func(*csvRow) (func() (outcome, error), *RowError),
	send func(parsedRow) error, skip int) *blocker {
	return &blocker{known: known, parse: parse, send: send, skip: skip, sum: sha256.New(), clean: true}
}

// row takes a row read; it may end a block.
func (b *blocker) row(r *csvRow) error {
	// The CSV reader reuses its row and slice: the block keeps copies.
	start := len(b.fields)
	b.fields = append(b.fields, r.fields...)
	row := *r
	row.fields = b.fields[start:len(b.fields):len(b.fields)]
	if b.layout == nil {
		b.layout = layoutOf(r.index)
	}
	if len(b.rows) == 0 {
		b.sum.Write(b.layout)
	}
	b.buf = b.buf[:0]
	for _, f := range row.fields {
		b.buf = binary.AppendUvarint(b.buf, uint64(len(f)))
		b.buf = append(b.buf, f...)
	}
	b.buf = binary.AppendUvarint(b.buf, uint64(len(row.fields)))
	b.sum.Write(b.buf)
	b.size += len(b.buf)
	b.rows = append(b.rows, blockRow{row: row})
	if crc32.Checksum(b.buf, castagnoli)&blockMask == 0 || len(b.rows) >= maxBlockRows || b.size >= maxBlockBytes {
		return b.end()
	}
	return nil
}

// bad takes a row that could not be read: its block is neither looked up
// nor recorded.
func (b *blocker) bad(e *RowError) error {
	b.rows = append(b.rows, blockRow{bad: e})
	b.clean = false
	return nil
}

// end ends the block: it sends its rows on, parsed, or, if the block is
// known, the number of them to count as duplicates.
func (b *blocker) end() error {
	if len(b.rows) == 0 {
		return nil
	}
	rows, clean := b.rows, b.clean
	hash := b.sum.Sum(nil)
	defer func() {
		clear(rows)
		clear(b.fields)
		b.rows, b.fields, b.clean, b.size = rows[:0], b.fields[:0], true, 0
		b.sum.Reset()
	}()
	last := rows[len(rows)-1].line()
	if last <= b.skip {
		return nil
	}
	if clean {
		ok, err := b.known(hash)
		if err != nil {
			return err
		}
		if ok {
			n := 0
			for _, r := range rows {
				if r.line() > b.skip {
					n++
				}
			}
			return b.send(parsedRow{line: last, known: n})
		}
	}
	// Rows at or before skip are parsed too, to know whether the block
	// is clean, but not sent: they were written before.
	for i := range rows {
		r := &rows[i]
		p := parsedRow{line: r.line(), bad: r.bad}
		if r.bad == nil {
			p.write, p.bad = b.parse(&r.row)
			if p.bad != nil {
				p.write, clean = nil, false
			}
		}
		if i == len(rows)-1 && clean {
			p.block = hash
		}
		if p.line > b.skip {
			if err := b.send(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *blockRow) line() int {
	if r.bad != nil {
		return r.bad.Line
	}
	return r.row.line
}

// layoutOf is the column keys with the positions they were found at, in
// a fixed order: the same text means the same values only in the same
// layout.
func layoutOf(index map[string]int) []byte {
	out := []byte(blockVersion)
	for _, k := range slices.Sorted(maps.Keys(index)) {
		out = append(out, 0)
		out = append(out, k...)
		out = append(out, '=')
		out = strconv.AppendInt(out, int64(index[k]), 10)
	}
	return append(out, 0)
}
