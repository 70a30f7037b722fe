// Package publishtest builds adversarial bundle archives for tests of the
// publishing path: archives whose entries claim far more than they carry.
package publishtest
