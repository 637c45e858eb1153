// Package testutil holds the helpers that the tests of several znet packages
// share: skipping unprivileged runs, checking for leaked goroutines and
// making unique names for throwaway namespaces.
//
// It imports nothing of znet, so that any package's internal tests can use
// it without an import cycle. Helpers that need a znet package (throwaway
// namespaces) are in the subpackage nstest. Helpers that only one package
// needs stay in that package's own test files.
package testutil
