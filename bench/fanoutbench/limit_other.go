//go:build !unix

package fanoutbench

// openFileLimit is unknown here.
func openFileLimit() uint64 { return 0 }
