package flowlog

// NewStalled opens a Logger whose writer has not started: nothing leaves
// its buffer until start is called.
func NewStalled(cfg Config) (l *Logger, start func(), err error) {
	l, err = newLogger(cfg)
	if err != nil {
		return nil, nil, err
	}
	return l, func() { go l.run() }, nil
}
