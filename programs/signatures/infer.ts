/**
 * A signature's fields as TypeScript types, read from the signature's text at compile time (as Ax does):
 * `OutputsOf<"message -> category: Literal['billing', 'shipping'], score: float">` is
 * `{ category: "billing" | "shipping"; score: number }`. The parser (parse.ts) stays the judge of what a
 * signature means at runtime; a text these types cannot read gives `Record<string, unknown>`.
 */

type Space = " " | "\n" | "\t";
type Trim<S extends string> = S extends `${Space}${infer R}`
  ? Trim<R>
  : S extends `${infer L}${Space}`
    ? Trim<L>
    : S;

/** Splits at the commas outside brackets and parentheses. */
type SplitTop<
  S extends string,
  Current extends string = "",
  Depth extends unknown[] = [],
  Parts extends string[] = [],
> = S extends `${infer C}${infer Rest}`
  ? C extends "[" | "("
    ? SplitTop<Rest, `${Current}${C}`, [...Depth, C], Parts>
    : C extends "]" | ")"
      ? SplitTop<Rest, `${Current}${C}`, Depth extends [unknown, ...infer Outer] ? Outer : [], Parts>
      : C extends ","
        ? Depth extends []
          ? SplitTop<Rest, "", Depth, [...Parts, Trim<Current>]>
          : SplitTop<Rest, `${Current}${C}`, Depth, Parts>
        : SplitTop<Rest, `${Current}${C}`, Depth, Parts>
  : Trim<Current> extends ""
    ? Parts
    : [...Parts, Trim<Current>];

type LiteralOf<V extends string> = V extends `'${infer T}'`
  ? T
  : V extends `"${infer T}"`
    ? T
    : V extends "True" | "true"
      ? true
      : V extends "False" | "false"
        ? false
        : V extends `${infer N extends number}`
          ? N
          : never;

/** The TypeScript type of a signature type expression (constraints in parentheses ignored). */
export type TypeOf<T extends string> = T extends `${infer Base}(${string}`
  ? TypeOf<Trim<Base>>
  : T extends "str"
    ? string
    : T extends "int" | "float" | "probability" | "confidence"
      ? number
      : T extends "bool"
        ? boolean
        : T extends "embedding"
          ? number[]
          : T extends "list" | "List"
            ? string[]
            : T extends `${"list" | "List"}[${infer Item}]`
              ? TypeOf<Trim<Item>>[]
              : T extends "dict" | "Dict"
                ? Record<string, unknown>
                : T extends `${"dict" | "Dict"}[${string},${infer Value}]`
                  ? Record<string, TypeOf<Trim<Value>>>
                  : T extends `Optional[${infer Inner}]`
                    ? TypeOf<Trim<Inner>> | null
                    : T extends `Literal[${infer Values}]`
                      ? LiteralOf<SplitTop<Values>[number]>
                      : unknown;

/** One field's name and type: `name`, `name: type`, `name?: type = default`. */
type FieldOf<F extends string> = F extends `${infer Name}:${infer Type}`
  ? [
      Trim<Name> extends `${infer N}?` ? N : Trim<Name>,
      TypeOf<Trim<Type extends `${infer T}=${string}` ? T : Type>>,
    ]
  : [Trim<F>, string];

type FieldsOf<Parts extends string[]> = { [P in Parts[number] as FieldOf<P>[0]]: FieldOf<P>[1] };

/** The output fields of a signature text (what follows its last `->`). */
export type OutputsOf<S extends string> = string extends S
  ? Record<string, unknown>
  : S extends `${string}->${infer Rest}`
    ? Rest extends `${string}->${string}`
      ? OutputsOf<Rest>
      : FieldsOf<SplitTop<Rest>>
    : Record<string, unknown>;
