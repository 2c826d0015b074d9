package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/otklik/otklik/etl"
)

func cmdIngest(ctx context.Context, e *env, args []string) error {
	fs, err := flags("ingest", args, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	a, err := openApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	res, err := a.ingest(ctx, fs.Args())
	fmt.Fprintln(e.stdout, ingestLine(res))
	return err
}

// ingest pulls every source, or loads the given local files.
func (a *app) ingest(ctx context.Context, files []string) (etl.Result, error) {
	var res etl.Result
	err := a.job(ctx, "ingest", func(ctx context.Context) (string, error) {
		var err error
		if len(files) > 0 {
			res, err = a.ingester().IngestFiles(ctx, files)
		} else {
			specs, serr := a.specs()
			if serr != nil {
				return "", serr
			}
			res, err = a.ingester().Run(ctx, specs)
		}
		if err == nil && res.SourceErrors > 0 {
			err = fmt.Errorf("%d source errors (see the log)", res.SourceErrors)
		}
		return ingestLine(res), err
	})
	return res, err
}

func ingestLine(r etl.Result) string {
	return fmt.Sprintf("files: %d ingested, %d failed, %d duplicate; rows: %d loaded, %d duplicate, %d rejected",
		r.Ingested, r.Failed, r.SkippedDuplicate, r.Loaded, r.Duplicate, r.Rejected)
}
