package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlagsMetricsAndLogs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // part of the error; "" for none
	}{
		{"off by default", nil, ""},
		{"metrics", []string{"--metrics", "198.18.0.1:9464"}, ""},
		{"metrics with peers", []string{"--metrics", "[::1]:9464", "--metrics-peers"}, ""},
		{"metrics without port", []string{"--metrics", "198.18.0.1"}, "--metrics \"198.18.0.1\": want ADDR:PORT"},
		{"peers without metrics", []string{"--metrics-peers"}, "add --metrics ADDR:PORT"},
		{"json logs", []string{"--log-format", "json"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if tt.want == "" {
				require.NoError(t, err)
				_, err := newLogger(o)
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	o, err := parseFlags(nil)
	require.NoError(t, err)
	assert.Empty(t, o.metrics, "metrics are off by default")
	assert.Equal(t, "text", o.logFormat)
}

func TestNewLoggerRefusesUnknownFormats(t *testing.T) {
	o, err := parseFlags([]string{"--log-format", "xml"})
	require.NoError(t, err)
	_, err = newLogger(o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--log-format "xml": want text or json`)
	o.logFormat, o.logLevel = "text", "loud"
	_, err = newLogger(o)
	assert.ErrorContains(t, err, "--log-level")
}
