// Package ocitest builds and pushes the images tests serve: the bundles of
// a registry+v1 bundle tree (such as the sample catalog in bundles/) as
// bundle images, and a catalog image that lists them by image only.
package ocitest
