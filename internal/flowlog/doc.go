// Package flowlog writes fwd's flow log: one line per decided new flow,
// in the AWS VPC Flow Logs version 2 default format, so that tools that
// read VPC flow logs read fwd's.
//
// The verdict path hands a Record, a small fixed-size value, to
// Logger.Log, which never blocks and never allocates: it puts the record
// in a bounded channel, or counts it as dropped when the channel is full.
// One writer goroutine takes records off the channel, rate-limits them
// (lines per second; the rest are counted and reported in a SKIPDATA
// line), formats them into a buffered writer, and rotates the file by
// size over a bounded number of files. It flushes on a short ticker and
// on Close.
//
// One job per file: record.go the value and its line, limit.go the rate
// limit, rotate.go the size-rotated files, logger.go the channel and the
// writer goroutine.
package flowlog
