module jetstream-pin.local/node-programs

go 1.26
