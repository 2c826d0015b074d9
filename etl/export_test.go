package etl

import "context"

// Fetch downloads one listed file into the spool exactly as a run does
// (resumed after a cut, size checked against the listing, sha256 computed
// on the way) and returns the spooled path and its sha256, for the
// download benchmark. The ledger is not touched.
func (in *Ingester) Fetch(ctx context.Context, spec SourceSpec, e Entry) (path, sha256 string, err error) {
	path, sha256, _, err = in.download(ctx, spec, e, in.log().With("source", spec.Name, "file", e.Name))
	return path, sha256, err
}
