// Package yamljson converts the YAML that Kubernetes manifests are written
// in to JSON in one pass, byte for byte as sigs.k8s.io/yaml.YAMLToJSON
// does, and falls back to that library for anything outside the subset it
// knows.
//
// The subset: block mappings and sequences (compact sequences included),
// plain scalars on one line, single- and double-quoted scalars on one line,
// literal and folded block scalars without an indentation indicator,
// comments, and the empty flow collections [] and {}. Keys are plain or
// quoted scalars that resolve to strings. Plain scalars are typed as
// sigs.k8s.io/yaml types them (YAML 1.1 rules of its goyaml.v2 fork):
// null, booleans (yes/no/on/off included) and decimal integers are typed
// here; any other scalar that could be a number or a timestamp is handed
// to the library on its own and its answer is used as it is.
//
// Anything else (anchors, aliases, tags, merge keys, directives, complex or
// duplicate keys, multi-line plain or quoted scalars, flow collections with
// content, tabs in indentation, carriage returns, characters YAML does not
// allow, nesting deeper than MaxDepth, more than 256 scalars the library
// would have to type one by one) makes Parse report that it did not answer;
// Convert then returns what the library returns, error included. The
// parser never recurses deeper than MaxDepth, reads every byte a bounded
// number of times and allocates in proportion to its input.
package yamljson
