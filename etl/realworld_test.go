package etl_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otklik/otklik/etl"
	"github.com/otklik/otklik/store"
	"golang.org/x/text/encoding/charmap"
)

// TestRealWorld_CommerceML loads every public 1C/CommerceML sample: each
// loads what it holds, or is refused with a precise reason if it holds
// nothing we use.
func TestRealWorld_CommerceML(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "realworld")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("the shared sample files are not here: %v", err)
	}
	for _, tc := range []struct {
		file      string
		lines     int64  // purchase lines, customers, groups and products loaded
		purchases int64  // purchase lines in the database
		customers int64  // customer cards made
		refused   string // part of the reason, if refused
	}{
		// 4 orders of 1 line; order 481 belongs to a shared placeholder buyer.
		{file: "cml31-orders-ut-bitrix6.xml", lines: 4, purchases: 4, customers: 1},
		// 4 lines, one of them the ORDER_DELIVERY pseudo product.
		{file: "cml209-orders-ut-to-site-warehouse.xml", lines: 3, purchases: 3},
		{file: "cml209-contractors-ut-demo.xml", lines: 4, customers: 4},
		{file: "cml208-invoice-1c-edo-cp1251.xml", lines: 1, purchases: 1},
		{file: "cml205-orders-bitrix-cp1251.xml", lines: 8, purchases: 8},
		{file: "cml205-orders-empty-cp1251.xml"},
		{file: "cml203-order-bitrix-cp1251-double-escaped.xml", lines: 1, purchases: 1},
		{file: "cml203-orders-status-only.xml", lines: 1, purchases: 1},
		{file: "cml2-noversion-purchase-order-ut103.xml", refused: "где мы покупатель (Роль Покупатель), а не продажа: 1"},
		{file: "cml1-sale-1c77-cp1251.xml", refused: "CommerceML 1.x"},
		{file: "cml204-catalog-ua-crlf.xml", lines: 89},
		{file: "cml207-catalog-nested-groups.xml", lines: 24},
		{file: "cml31-classifier-ut-bitrix6.xml", lines: 1},
		{file: "cml31-goods-ut-bitrix6.xml", lines: 21},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in, db := newIngester(t)
			res, err := in.IngestFiles(context.Background(), etl.FeedOrders, []string{filepath.Join(dir, tc.file)})
			if err != nil {
				t.Fatal(err)
			}
			s := status(t, db)
			if tc.refused != "" {
				var reason string
				for _, r := range mustFiles(t, db) {
					reason = r
				}
				if res.Failed != 1 || !strings.Contains(reason, tc.refused) {
					t.Fatalf("res = %+v, reason %q; want refused with %q", res, reason, tc.refused)
				}
				return
			}
			if res.Ingested != 1 || res.Loaded != tc.lines || s.PurchaseLines != tc.purchases || s.Customers != tc.customers {
				t.Fatalf("res = %+v, purchase lines %d, customers %d; want %d rows, %d lines, %d customers",
					res, s.PurchaseLines, s.Customers, tc.lines, tc.purchases, tc.customers)
			}
		})
	}
}

func mustFiles(t *testing.T, db interface {
	FileErrors(context.Context) ([]string, error)
}) []string {
	t.Helper()
	errs, err := db.FileErrors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return errs
}

// TestCommerceML_SameOrderTwice: order 36 arrives in two files, in two
// encodings and element orders; it loads once.
func TestCommerceML_SameOrderTwice(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "realworld")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("the shared sample files are not here: %v", err)
	}
	in, db := newIngester(t)
	for _, f := range []string{"cml203-order-bitrix-cp1251-double-escaped.xml", "cml203-orders-status-only.xml"} {
		if _, err := in.IngestFiles(context.Background(), etl.FeedOrders, []string{filepath.Join(dir, f)}); err != nil {
			t.Fatal(err)
		}
	}
	s := status(t, db)
	if s.PurchaseLines != 1 || s.Rows.Duplicate != 1 {
		t.Fatalf("lines %d, duplicates %d; want 1 and 1", s.PurchaseLines, s.Rows.Duplicate)
	}
}

// TestCommerceML_CategoryFromLaterCatalog: order lines name only a
// product; the catalog that puts it in a group may come later.
func TestCommerceML_CategoryFromLaterCatalog(t *testing.T) {
	ctx := context.Background()
	in, db := newIngester(t)
	dir := t.TempDir()
	order := `<?xml version="1.0" encoding="windows-1251"?>
<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_210" ВерсияСхемы="2.10">
<Документ><Ид>A-1</Ид><Номер>1</Номер><Дата>2026-11-01</Дата><Время>10:05:00</Время>
<ХозОперация>Заказ товара</ХозОперация><Роль>Продавец</Роль>
<Контрагенты><Контрагент><Ид>c-1</Ид><Наименование>Иванова Анна</Наименование><Роль>Покупатель</Роль>
<Контакты><Контакт><Тип>Электронная почта</Тип><Значение>Anna@Example.ru</Значение></Контакт>
<Контакт><Тип>Телефон мобильный</Тип><Значение>8 (912) 345-67-89</Значение></Контакт></Контакты></Контрагент></Контрагенты>
<Товары><Товар><Ид>p-1#size-2</Ид><Наименование>Диван</Наименование><ЦенаЗаЕдиницу>45990.00</ЦенаЗаЕдиницу>
<Количество>1</Количество><Сумма>45990.00</Сумма><Налоги><Налог><Сумма>7665</Сумма></Налог></Налоги></Товар></Товары>
</Документ></КоммерческаяИнформация>`
	catalog := `<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.07"><Классификатор><Группы><Группа><Ид>g-1</Ид><Наименование>Мебель</Наименование>
<Группы><Группа><Ид>g-2</Ид><Наименование>Диваны</Наименование></Группа></Группы></Группа></Группы></Классификатор>
<Каталог><Товары><Товар><Ид>p-1</Ид><Наименование>Диван</Наименование><Группы><Ид>g-2</Ид></Группы></Товар></Товары></Каталог>
</КоммерческаяИнформация>`
	enc, _ := charmap.Windows1251.NewEncoder().String(order)
	os.WriteFile(filepath.Join(dir, "orders.xml"), []byte(enc), 0o644)
	os.WriteFile(filepath.Join(dir, "import.xml"), []byte(catalog), 0o644)
	for _, f := range []string{"orders.xml", "import.xml"} {
		if res, err := in.IngestFiles(ctx, "", []string{filepath.Join(dir, f)}); err != nil || res.Ingested != 1 {
			t.Fatalf("%s: %+v %v", f, res, err)
		}
	}
	sales, err := db.SalesByCategory(ctx, store.Period{From: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sales) != 1 || sales[0].Category != "Диваны" || sales[0].RevenueKop != 4599000 {
		t.Fatalf("sales = %+v, want the line under Диваны with its own sum, not its tax", sales)
	}
	if s := status(t, db); s.Customers != 1 {
		t.Fatalf("customers = %d", s.Customers)
	}
}
