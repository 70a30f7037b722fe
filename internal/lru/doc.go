// Package lru is a cache that evicts the least recently used entries to stay
// within a budget of bytes, as each caller measures them.
package lru
