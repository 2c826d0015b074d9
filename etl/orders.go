package etl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/otklik/otklik/store"
)

// xmlLoad turns the pieces of a CommerceML file into rows.
type xmlLoad struct {
	ctx    context.Context
	in     *Ingester
	batch  func() *store.Batch // the current batch: load commits as it goes
	zone   func(string) *time.Location
	latest time.Time // the latest a sale may be dated
	added  func(outcome, error) error
	reject func(*RowError) error
	drop   func([]*RowError) error // values left out of what loads
	// Items (documents, customers, group trees, products) are numbered
	// in file order; step loads one at its number (see Ingester.load).
	item int
	step func(item int, load func() error) error

	docs, sales, usable int
	buyer, status       int    // documents skipped, by reason
	skipped             string // why nothing was loaded, if nothing was
}

// errStopped ends the reading of a file whose load stopped.
var errStopped = errors.New("load stopped")

// DefaultStore is the store code of CommerceML documents that name no
// warehouse: orders of a web shop.
const DefaultStore = "web"

func (x *xmlLoad) read(r io.Reader, isUTF8 bool) error {
	// The file is read on a goroutine of its own while this one loads
	// what it read: decoding the XML is most of a large file's time. One
	// item waits at most, so that a hostile file holds no more than two or
	// three items' limits in memory.
	type item struct {
		load func(*xnode) error
		node *xnode
	}
	items := make(chan item, 1)
	stop := make(chan struct{})
	send := func(load func(*xnode) error) func(*xnode) error {
		return func(n *xnode) error {
			select {
			case items <- item{load, n}:
				return nil
			case <-stop:
				return errStopped
			}
		}
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(items)
		readErr <- readCommerceML(r, isUTF8, cmlSink{
			document: send(x.document),
			party:    send(x.party),
			groups:   send(x.groups),
			product:  send(x.product),
		})
	}()
	var err error
	for it := range items {
		x.item++
		if err = x.step(x.item, func() error { return it.load(it.node) }); err != nil {
			break
		}
	}
	close(stop)
	for range items { // let the reader end before the file closes
	}
	if rerr := <-readErr; err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	var why []string
	if x.buyer > 0 {
		why = append(why, fmt.Sprintf("документов, где мы покупатель (Роль Покупатель), а не продажа: %d", x.buyer))
	}
	if x.status > 0 {
		why = append(why, fmt.Sprintf("документов только со статусом, без товаров: %d", x.status))
	}
	x.skipped = strings.Join(why, "; ")
	return nil
}

// document loads a sale: our side is the seller, the buyer is a customer
// (a shared placeholder buyer makes it anonymous), each line is its
// position in the document, a return (Возврат товара) has negative
// quantities. Other documents update nothing.
func (x *xmlLoad) document(doc *xnode) error {
	x.docs++
	if x.docs > xmlMaxDocuments {
		return &FileError{Reason: fmt.Sprintf("строка %d: больше %d документов", doc.line, xmlMaxDocuments)}
	}
	if role := norm(doc.get("Роль")); role != "" && role != "продавец" {
		x.buyer++
		return nil
	}
	goods := doc.child("Товары").children("Товар")
	if len(goods) == 0 {
		x.status++
		return nil
	}
	receipt := doc.get("Ид")
	if receipt == "" {
		receipt = doc.get("Номер")
	}
	if receipt == "" {
		return x.reject(&RowError{Line: doc.line, Field: "Документ/Ид", Reason: "у документа нет ни Ид, ни Номера"})
	}
	storeCode := doc.get("Склады", "Склад", "Ид")
	if storeCode == "" {
		storeCode = DefaultStore
	}
	when := doc.get("Дата")
	if t := doc.get("Время"); t != "" {
		when += " " + t
	}
	at, err := parseDateTime(strings.Replace(when, "T", " ", 1), x.zone(storeCode))
	if err == nil {
		err = checkPurchaseDate(when, at, x.latest)
	}
	if err != nil {
		return x.reject(&RowError{Line: doc.line, Field: "Документ " + receipt + "/Дата", Reason: err.Error()})
	}
	ret := strings.HasPrefix(norm(doc.get("ХозОперация")), "возврат")
	customer := ""
	for _, p := range doc.child("Контрагенты").children("Контрагент") {
		if norm(p.get("Роль")) != "покупатель" {
			continue
		}
		if isPlaceholder(p) {
			break
		}
		customer = p.get("Ид")
		if err := x.contact(p, doc.line); err != nil {
			return err
		}
		break
	}
	x.sales++
	for i, g := range goods {
		code := g.get("Ид")
		if code == "" {
			code = g.get("Артикул")
		}
		if code == "ORDER_DELIVERY" {
			continue // delivery is a service, not a product
		}
		field := func(f string) string { return fmt.Sprintf("Документ %s/Товар %d/%s", receipt, i+1, f) }
		qty, err := parseMilli(g.get("Количество"))
		if err != nil {
			if err := x.reject(&RowError{Line: doc.line, Field: field("Количество"), Reason: err.Error()}); err != nil {
				return err
			}
			continue
		}
		priceText := g.get("ЦенаЗаЕдиницу")
		if priceText == "" {
			priceText = g.get("Цена")
		}
		price, _ := parseFixed4(priceText)
		sum, err := parseFixed4(g.get("Сумма")) // the line's own, not its taxes'
		ok := err == nil
		if !ok {
			sum, ok = lineSum(price, qty)
		}
		if !ok || lineBeyond(qty, price, sum) != "" {
			reason := fmt.Sprintf("количество %q, цена %q, сумма %q: больше %d шт. или %d руб., значение другого элемента?",
				g.get("Количество"), priceText, g.get("Сумма"), maxLineMilli/1000, maxLineKopecks/100)
			if err := x.reject(&RowError{Line: doc.line, Field: field("Сумма"), Reason: reason}); err != nil {
				return err
			}
			continue
		}
		if ret {
			qty, sum = -abs(qty), -abs(sum)
		}
		category, err := x.batch().Category(x.ctx, code, g.get("Группы", "Ид"))
		if err != nil {
			return err
		}
		if category == "" {
			for _, r := range g.child("ЗначенияРеквизитов").children("ЗначениеРеквизита") {
				if norm(r.get("Наименование")) == "видноменклатуры" {
					category = clean(r.get("Значение"))
				}
			}
		}
		p := store.PurchaseLine{StoreCode: storeCode, Receipt: receipt, Line: i + 1, At: at, CustomerCode: customer,
			ProductCode: code, Product: clean(g.get("Наименование")), Category: category,
			QtyMilli: qty, PriceKop: price, SumKop: sum}
		if err := x.added(outcomeOf(x.batch().AddPurchaseLine(x.ctx, p))); err != nil {
			return err
		}
	}
	return nil
}

// contact records a buyer, of a document at line, with a way to reach
// them.
func (x *xmlLoad) contact(p *xnode, line int) error {
	email, phone, dropped := contacts(p, line)
	if err := x.drop(dropped); err != nil {
		return err
	}
	if email == "" && phone == "" {
		return nil
	}
	_, err := x.batch().AddContact(x.ctx, store.Customer{Code: p.get("Ид"), Name: partyName(p), Email: email, Phone: phone})
	return err
}

// party loads a counterparty of a customers-only file.
func (x *xmlLoad) party(p *xnode) error {
	if isPlaceholder(p) || p.get("Ид") == "" {
		return nil
	}
	x.usable++
	email, phone, dropped := contacts(p, p.line)
	if err := x.drop(dropped); err != nil {
		return err
	}
	return x.added(outcomeOf(x.batch().AddContact(x.ctx, store.Customer{Code: p.get("Ид"), Name: partyName(p), Email: email, Phone: phone})))
}

// groups loads a catalog's group tree, nested Группы within Группа.
func (x *xmlLoad) groups(n *xnode) error {
	var walk func(n *xnode, parent string) error
	walk = func(n *xnode, parent string) error {
		for _, g := range n.children("Группа") {
			id := g.get("Ид")
			if id == "" {
				continue
			}
			x.usable++
			if err := x.added(outcomeOf(x.batch().AddGroup(x.ctx, id, clean(g.get("Наименование")), parent))); err != nil {
				return err
			}
			if err := walk(g.child("Группы"), id); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n, "")
}

// product loads a catalog product with its group.
func (x *xmlLoad) product(p *xnode) error {
	code := p.get("Ид")
	if code == "" {
		return nil
	}
	x.usable++
	return x.added(outcomeOf(x.batch().AddProduct(x.ctx, code, clean(p.get("Наименование")), p.get("Группы", "Ид"))))
}

// parseFixed4 reads a CommerceML amount (a point, up to 4 decimals) into
// kopecks, rounding half away from zero past the second decimal.
func parseFixed4(s string) (int64, error) {
	v, err := parseFixed(s, 4)
	if err != nil {
		return 0, err
	}
	if v >= 0 {
		return (v + 50) / 100, nil
	}
	return (v - 50) / 100, nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
