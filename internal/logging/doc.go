// Package logging builds the logr.Logger Ferry's commands use: zap, as text
// for people or JSON for log pipelines.
package logging
