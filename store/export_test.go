package store

// ReadsBack reports whether the batch's commit, if it adds its sums to the
// sales roll-ups, will read its lines back from the table rather than use
// the sums made as they were inserted.
func (b *Batch) ReadsBack() bool { return b.sales.partial || b.sales.sums == nil }
