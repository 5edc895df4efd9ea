module github.com/libvwn/vwn-go

go 1.22
