// Package nstest makes throwaway network namespaces for tests that share
// them across znet packages. It leaves out everything a test puts inside a
// namespace (links, addresses, routes): those stay with the tests.
//
// It imports package namespaces, so namespaces' own internal tests cannot
// use it; they keep their own helper.
package nstest
