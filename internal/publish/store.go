package publish

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DBFile is the store's file name under the data directory.
const DBFile = "published.db"

var (
	bundlesBucket      = []byte("bundles")
	deprecationsBucket = []byte("deprecations")
)

// Record is one published bundle as stored.
type Record struct {
	Package string
	// Version is the CSV's version, in canonical semver form; the key.
	Version string
	// Name is the CSV's name.
	Name string
	// Digest is Files.Digest().
	Digest   string
	Channels []string
	// PublishedAt is when it was first stored.
	PublishedAt time.Time
	Files       Files
}

// Deprecation schemas, as in olm.deprecations references.
const (
	SchemaPackage = "olm.package"
	SchemaChannel = "olm.channel"
	SchemaBundle  = "olm.bundle"
)

// Deprecation marks a package, channel or bundle deprecated.
type Deprecation struct {
	Package string
	// Schema is SchemaPackage, SchemaChannel or SchemaBundle.
	Schema string
	// Name is the channel or bundle name; empty for the package.
	Name    string
	Message string
	At      time.Time
}

// Store keeps published bundles and deprecations in a bbolt database. Every
// write is one transaction, synced to disk before it returns: after a crash
// the store holds each write entirely or not at all.
type Store struct {
	db *bolt.DB
}

// Open opens (or creates) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	p := filepath.Join(dir, DBFile)
	db, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	// The database file's directory entry must survive a crash too.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bundlesBucket, deprecationsBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialising %s: %w", p, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file.
func (s *Store) Path() string { return s.db.Path() }

// Get returns the record of a package version, or nil.
func (s *Store) Get(pkg, version string) (*Record, error) {
	var rec *Record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bundlesBucket).Bucket([]byte(pkg))
		if b == nil {
			return nil
		}
		v := b.Get([]byte(version))
		if v == nil {
			return nil
		}
		r, err := decodeRecord(v)
		rec = r
		return err
	})
	return rec, err
}

// Put stores rec unless its version is already stored, in which case the
// stored record is returned and nothing is written.
func (s *Store) Put(rec *Record) (*Record, error) {
	if rec.Package == "" || rec.Version == "" {
		return nil, errors.New("record needs package and version")
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(rec); err != nil {
		return nil, err
	}
	var existing *Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bundlesBucket).CreateBucketIfNotExists([]byte(rec.Package))
		if err != nil {
			return err
		}
		if v := b.Get([]byte(rec.Version)); v != nil {
			existing, err = decodeRecord(v)
			return err
		}
		return b.Put([]byte(rec.Version), buf.Bytes())
	})
	return existing, err
}

// All returns every published bundle, by package and version key.
func (s *Store) All() ([]*Record, error) {
	var out []*Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bundlesBucket).ForEachBucket(func(pkg []byte) error {
			return tx.Bucket(bundlesBucket).Bucket(pkg).ForEach(func(k, v []byte) error {
				r, err := decodeRecord(v)
				if err != nil {
					return fmt.Errorf("%s %s: %w", pkg, k, err)
				}
				out = append(out, r)
				return nil
			})
		})
	})
	return out, err
}

// PutDeprecation stores a deprecation, replacing the message of an earlier
// one for the same package, schema and name.
func (s *Store) PutDeprecation(d Deprecation) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(d); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(deprecationsBucket).CreateBucketIfNotExists([]byte(d.Package))
		if err != nil {
			return err
		}
		return b.Put([]byte(d.Schema+"\x00"+d.Name), buf.Bytes())
	})
}

// Deprecations returns every stored deprecation, by package, schema and name.
func (s *Store) Deprecations() ([]Deprecation, error) {
	var out []Deprecation
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(deprecationsBucket).ForEachBucket(func(pkg []byte) error {
			return tx.Bucket(deprecationsBucket).Bucket(pkg).ForEach(func(_, v []byte) error {
				var d Deprecation
				if err := gob.NewDecoder(bytes.NewReader(v)).Decode(&d); err != nil {
					return fmt.Errorf("deprecation of %s: %w", pkg, err)
				}
				out = append(out, d)
				return nil
			})
		})
	})
	return out, err
}

func decodeRecord(v []byte) (*Record, error) {
	var r Record
	if err := gob.NewDecoder(bytes.NewReader(v)).Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding stored bundle: %w", err)
	}
	if r.Files == nil {
		r.Files = Files{}
	}
	if got := r.Files.Digest(); got != r.Digest {
		return nil, fmt.Errorf("stored bundle %s %s: content digest %s does not match the recorded %s", r.Package, r.Version, got, r.Digest)
	}
	return &r, nil
}
