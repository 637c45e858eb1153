package dataplane

import (
	"os"
	"testing"
)

// dataplaneEnv makes the test binary act as the program (see TestMain).
const dataplaneEnv = "ZNET_TEST_DATAPLANE"

func TestMain(m *testing.M) {
	if os.Getenv(dataplaneEnv) == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}
