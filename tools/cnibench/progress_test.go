package cnibench

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestProgress(t *testing.T) {
	var nilBar *Progress // draws nothing and does not panic
	nilBar.Start("add", 2)
	nilBar.Step()
	nilBar.Done()

	var out bytes.Buffer
	p := NewProgress(&out)
	p.Start("add", 2)
	assert.Contains(t, out.String(), "add            [..............................] 0/2")
	p.Step()
	p.Step() // the last step always redraws
	assert.Contains(t, out.String(), "[##############################] 2/2")
	p.Done()
	assert.Equal(t, "\r\033[K", out.String()[out.Len()-4:], "Done erases the line")
}
