package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/otklik/otklik/etl"
)

func cmdForget(ctx context.Context, e *env, args []string) error {
	fs, err := flags("forget", args, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{msg: "usage: otklik forget EMAIL|PHONE"}
	}
	who := fs.Arg(0)
	var email, phone string
	if strings.Contains(who, "@") {
		if email, err = etl.NormalizeEmail(who); err != nil {
			return &usageError{msg: err.Error()}
		}
	} else if phone, err = etl.NormalizePhone(who); err != nil {
		return &usageError{msg: err.Error()}
	}
	a, err := openApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	var n int64
	err = a.job(ctx, "forget", func(ctx context.Context) (string, error) {
		var err error
		n, err = a.db.Forget(ctx, email, phone)
		return fmt.Sprintf("%d cards erased", n), err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "erased %d customer cards; the address gets no more surveys; answers stay, anonymized\n", n)
	return nil
}
