package local

// BlocksFrom returns up to limit blocks in order from height from on, or
// none if from is past the head: Blocks in pages, for a node that
// downloads the chain over the network without the sequencer loading it
// whole.
func (l *Ledger) BlocksFrom(from uint64, limit int) ([]Block, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if limit <= 0 || from > l.st.Height {
		return nil, nil
	}
	n := min(uint64(limit), l.st.Height-from+1)
	out := make([]Block, 0, n)
	for h := from; h < from+n; h++ {
		b, err := l.block(h)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
