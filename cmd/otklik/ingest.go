package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/store"
)

func cmdIngest(ctx context.Context, e *env, args []string) error {
	var feed string
	fs, err := flags("ingest", args, func(fs *flag.FlagSet) {
		fs.StringVar(&feed, "feed", "", "with FILEs: load them as this feed (stores, customers, purchases) whatever their names")
	})
	if err != nil {
		return err
	}
	if _, ok := etl.DefaultPatterns[feed]; feed != "" && !ok {
		return &usageError{msg: fmt.Sprintf("--feed %q is not stores, customers or purchases", feed)}
	}
	store.ReservePageCache() // it loads files
	a, err := openApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	a.interactive()
	res, err := a.ingest(ctx, feed, fs.Args())
	a.progress.done()
	fmt.Fprintln(e.stdout, ingestLine(res))
	return err
}

// ingest pulls every source, or loads the given local files.
func (a *app) ingest(ctx context.Context, feed string, files []string) (etl.Result, error) {
	var res etl.Result
	err := a.job(ctx, "ingest", func(ctx context.Context) (string, error) {
		var err error
		if len(files) > 0 {
			res, err = a.ingester().IngestFiles(ctx, feed, files)
		} else {
			specs, serr := a.specs()
			if serr != nil {
				return "", serr
			}
			defer func() {
				for _, s := range specs {
					s.Source.Close()
				}
			}()
			res, err = a.ingester().Run(ctx, specs)
			if err == nil {
				a.sourceHealth(ctx, res.Sources)
			}
		}
		if err == nil && res.SourceErrors > 0 {
			err = fmt.Errorf("%d source errors (see the log)", res.SourceErrors)
		}
		return ingestLine(res), err
	})
	return res, err
}

func ingestLine(r etl.Result) string {
	line := fmt.Sprintf("files: %d ingested, %d failed, %d duplicate; rows: %d loaded, %d duplicate, %d rejected",
		r.Ingested, r.Failed, r.SkippedDuplicate, r.Loaded, r.Duplicate, r.Rejected)
	if r.Dropped > 0 {
		line += fmt.Sprintf("; %d values left out of rows that loaded (see the rejects files)", r.Dropped)
	}
	return line
}
