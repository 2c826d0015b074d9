package survey

import (
	"sort"
	"strings"
	"testing"
)

func labels(t *testing.T, d *Dictionary, text string) string {
	t.Helper()
	var out []string
	for _, f := range d.Classify(text) {
		sign := "+"
		if f.Tone == Negative {
			sign = "-"
		}
		out = append(out, f.Category+sign)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestDictionary_Classify(t *testing.T) {
	d, err := LoadDictionary("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ text, want string }{
		{"не хватает изделий", "assortment-"},
		{"продавец помог выбрать", "service+"},
		{"Продавец помог выбрать диван, всё объяснил. Спасибо!", "service+"},
		{"Продавец не помог, пришлось самим разбираться", "service-"},
		{"Консультант был очень вежливый и внимательный", "service+"},
		{"Кассир нахамила, больше не приду", "service-"},
		{"Долго ждали консультанта, никто не подошёл.", "service-"},
		{"Персонал грубый, на вопросы отвечали сквозь зубы", "service-"},
		{"Менеджер навязывал дополнительную гарантию", "service-"},
		{"Доставку сорвали, никто не позвонил", "service-"},
		{"Привезли вовремя, сборщики аккуратные", "service+"},
		{"Курьер опоздал на три часа", "service-"},
		{"Быстро оформили заказ и доставку", "service+"},
		{"Сотрудники приветливые, всё подсказали", "service+"},
		{"Обслуживание отличное", "service+"},
		{"Обслуживание ужасное", "service-"},
		{"Большой выбор диванов", "assortment+"},
		{"Широкий ассортимент, всё нашли", "assortment+"},
		{"Нужной модели нет в наличии", "assortment-"},
		{"Мало выбора кухонь", "assortment-"},
		{"Шкаф пришёл с браком, дверца поцарапана", "assortment-"},
		{"Не нашли нужный размер матраса", "assortment-"},
		{"Качество отличное, спасибо", "assortment+"},
		{"Закончились стулья из каталога", "assortment-"},
		{"Ассортимент хороший", "assortment+"},
		{"Ассортимент плохой", "assortment-"},
		{"Дорого", "prices-"},
		{"Цены кусаются", "prices-"},
		{"Цены не кусаются", "prices+"},
		{"Недорого и удобно", "comfort+ prices+"},
		{"Хорошие скидки по карте", "prices+"},
		{"Цена на кассе другая, чем на ценнике", "prices-"},
		{"Ценник не совпадает с ценой в чеке", "prices-"},
		{"Переплатили за доставку", "prices-"},
		{"Выгодно купили по акции", "prices+"},
		{"Цены завышены по сравнению с сайтом", "prices-"},
		{"В магазине чисто и уютно", "comfort+"},
		{"В зале душно, кондиционер не работает", "comfort-"},
		{"Тесно, тележки не проходят между рядами", "comfort-"},
		{"Негде припарковаться", "comfort-"},
		{"Просторный светлый зал, удобно", "comfort+"},
		{"Грязно в примерочной", "comfort-"},
		{"Магазин понравился", "comfort+"},
		{"Шумно и холодно", "comfort-"},
		{"Всё отлично, спасибо!", "other+"},
		{"Ужасно", "other-"},
		{"Рекомендую", "other+"},
		{"Не рекомендую", "other-"},
		{"Спасибо", "other+"},
		{"Приложение постоянно вылетает, плохо", "other-"},
		{"Бонусы начислили, хорошо", "other+"},
		{"", ""},
		{"Купил диван", ""},
		{"Продавец помог, но цены высокие", "prices- service+"},
		{"Выбор большой, а обслуживание плохое", "assortment+ service-"},
		{"Дорого, зато продавцы вежливые", "prices- service+"},
		{"Цены нормальные, но в зале грязно", "comfort-"},
		{"Консультант не был грубым", "service+"},
		{"Не дорого, но и качество плохое", "assortment- prices+"},
		{"ПРОДАВЕЦ ХАМИЛ!!!", "service-"},
		{"Очень понравилось обслуживание, продавец Анна молодец", "service+"},
		{"Ни одного консультанта в зале, кошмар", "comfort- service-"},
		{"<script>alert('xss')</script> всё хорошо", "other+"},
	} {
		if got := labels(t, d, tc.text); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestParseDictionary_Errors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"+ хорошо\n", "my.txt:1: words before the first [section]"},
		{"[service]\n* вежливый\n", "my.txt:2: a line starts with +, - or ="},
		{"[people]\n+ вежливый\n", "my.txt:1: unknown section [people]"},
		{"[tone]\n= хорошо\n", "my.txt:2: [tone] takes + or - only"},
	} {
		_, err := ParseDictionary("my.txt", strings.NewReader(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.body, err, tc.want)
		}
	}
}
