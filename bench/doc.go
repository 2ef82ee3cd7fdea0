// Package bench holds livegrid's capacity-planning suites.
package bench
