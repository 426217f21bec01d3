//! Parsing: tokens → [`NetworkDef`], the user's items with their spans.
//!
//! ```text
//! network! {
//!     #[attrs]* VIS struct NAME {
//!         input NAME: [DIMS] (grad)? ;
//!         param NAME: [DIMS] = INIT ;
//!         let NAME = EXPR ;
//!         output NAME (, NAME)* ;
//!     }
//! }
//! ```
//! Syntax errors stop at the first one (syn's way); meaning is checked later.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, bracketed, Attribute, Expr, Ident, LitInt, Token, Visibility};

/// The whole invocation.
pub struct NetworkDef {
    /// Attributes for the generated struct (`#[dtype]` already removed).
    pub attrs: Vec<Attribute>,
    /// The element type chosen by `#[dtype(f32|f64)]`.
    pub dtype: Dtype,
    pub vis: Visibility,
    pub name: Ident,
    pub items: Vec<Item>,
}

/// `f32` (the default) or `f64`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dtype {
    F32,
    F64,
}

/// One dimension of a declared shape.
#[derive(Clone)]
pub struct Dim {
    pub value: usize,
}

/// One item of the network body.
pub enum Item {
    /// `input x: [784];` or `input x: [784] grad;`
    Input {
        name: Ident,
        dims: Vec<Dim>,
        grad: bool,
    },
    /// `param w: [10] = normal(0.02);`
    Param {
        name: Ident,
        dims: Vec<Dim>,
        init: Expr,
    },
    /// `let h = relu(linear(x, 64));`
    Let { name: Ident, expr: Expr },
    /// `output a, b;`
    Output { names: Vec<Ident>, span: Span },
}

impl Parse for NetworkDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut attrs = input.call(Attribute::parse_outer)?;
        let dtype = take_dtype(&mut attrs)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        let body;
        braced!(body in input);
        let mut items = Vec::new();
        while !body.is_empty() {
            items.push(body.parse()?);
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the network's body"));
        }
        Ok(NetworkDef {
            attrs,
            dtype,
            vis,
            name,
            items,
        })
    }
}

/// What the generated API's shape depends on: the struct's header, and the names of the
/// inputs and outputs. The fallback emitted after an error needs only this, and it is
/// read even from a body with a syntax error.
pub struct Header {
    pub attrs: Vec<Attribute>,
    pub dtype: Dtype,
    pub vis: Visibility,
    pub name: Ident,
    pub inputs: Vec<Ident>,
    pub outputs: Vec<Ident>,
}

impl NetworkDef {
    /// The header of a parsed network.
    pub fn header(&self) -> Header {
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for item in &self.items {
            match item {
                Item::Input { name, .. } => inputs.push(name.clone()),
                Item::Output { names, .. } if outputs.is_empty() => outputs.clone_from(names),
                _ => {}
            }
        }
        Header {
            attrs: self.attrs.clone(),
            dtype: self.dtype,
            vis: self.vis.clone(),
            name: self.name.clone(),
            inputs,
            outputs,
        }
    }
}

/// The header of a description whose body does not parse: `input NAME` and `output A, B`
/// are picked out of the body's tokens. `None` when the struct's header itself is wrong.
pub fn parse_header(tokens: proc_macro2::TokenStream) -> Option<Header> {
    let lenient = |input: ParseStream| -> syn::Result<Header> {
        let mut attrs = input.call(Attribute::parse_outer)?;
        let dtype = take_dtype(&mut attrs).unwrap_or(Dtype::F32);
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        let body;
        braced!(body in input);
        let tokens: Vec<proc_macro2::TokenTree> = body
            .parse::<proc_macro2::TokenStream>()?
            .into_iter()
            .collect();
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        let ident = |t: &proc_macro2::TokenTree| match t {
            proc_macro2::TokenTree::Ident(i) => Some(i.clone()),
            _ => None,
        };
        for (k, t) in tokens.iter().enumerate() {
            match ident(t).map(|i| i.to_string()).as_deref() {
                Some("input") => inputs.extend(tokens.get(k + 1).and_then(ident)),
                Some("output") if outputs.is_empty() => {
                    let names = tokens[k + 1..].iter().take_while(
                        |t| !matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == ';'),
                    );
                    outputs.extend(names.filter_map(ident));
                }
                _ => {}
            }
        }
        Ok(Header {
            attrs,
            dtype,
            vis,
            name,
            inputs,
            outputs,
        })
    };
    syn::parse::Parser::parse2(lenient, tokens).ok()
}

/// Removes `#[dtype(..)]` from the attributes and reads it.
fn take_dtype(attrs: &mut Vec<Attribute>) -> syn::Result<Dtype> {
    let mut dtype = Dtype::F32;
    let mut seen = false;
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if !attr.path().is_ident("dtype") {
            kept.push(attr);
            continue;
        }
        if seen {
            return Err(syn::Error::new_spanned(&attr, "`#[dtype]` given twice"));
        }
        seen = true;
        let ty: Ident = attr.parse_args().map_err(|_| {
            syn::Error::new_spanned(&attr, "expected `#[dtype(f32)]` or `#[dtype(f64)]`")
        })?;
        dtype = match ty.to_string().as_str() {
            "f32" => Dtype::F32,
            "f64" => Dtype::F64,
            other => {
                return Err(syn::Error::new(
                    ty.span(),
                    format!("unknown dtype `{other}`; expected `f32` or `f64`"),
                ))
            }
        };
    }
    *attrs = kept;
    Ok(dtype)
}

impl Parse for Item {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Token![let]) {
            input.parse::<Token![let]>()?;
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let expr: Expr = input.parse()?;
            input.parse::<Token![;]>()?;
            return Ok(Item::Let { name, expr });
        }
        let keyword: Ident = input.parse().map_err(|e| {
            syn::Error::new(e.span(), "expected `input`, `param`, `let` or `output`")
        })?;
        match keyword.to_string().as_str() {
            "input" => parse_input(input),
            "param" => parse_param(input),
            "output" => parse_output(input, keyword.span()),
            other => Err(syn::Error::new(
                keyword.span(),
                format!(
                    "unknown item `{other}`; expected `input`, `param`, `let` or `output`{}",
                    crate::diagnostics::did_you_mean(other, ["input", "param", "output"])
                ),
            )),
        }
    }
}

fn parse_input(input: ParseStream) -> syn::Result<Item> {
    let name: Ident = input.parse()?;
    input.parse::<Token![:]>()?;
    let dims = parse_dims(input)?;
    let mut grad = false;
    if !input.peek(Token![;]) {
        let word: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), "expected `grad` or `;`"))?;
        if word != "grad" {
            return Err(syn::Error::new(
                word.span(),
                format!("expected `grad` or `;` after the input's shape, found `{word}`"),
            ));
        }
        grad = true;
    }
    input.parse::<Token![;]>()?;
    Ok(Item::Input { name, dims, grad })
}

fn parse_param(input: ParseStream) -> syn::Result<Item> {
    let name: Ident = input.parse()?;
    input.parse::<Token![:]>()?;
    let dims = parse_dims(input)?;
    input.parse::<Token![=]>().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected `= INIT` (a float, `zeros`, `ones`, `normal(std)` or `uniform(lo, hi)`)",
        )
    })?;
    let init: Expr = input.parse()?;
    input.parse::<Token![;]>()?;
    Ok(Item::Param { name, dims, init })
}

fn parse_output(input: ParseStream, span: Span) -> syn::Result<Item> {
    let names = Punctuated::<Ident, Token![,]>::parse_separated_nonempty(input)?;
    input.parse::<Token![;]>()?;
    Ok(Item::Output {
        names: names.into_iter().collect(),
        span,
    })
}

/// `[d1, d2, …]`: integer literals.
fn parse_dims(input: ParseStream) -> syn::Result<Vec<Dim>> {
    let content;
    bracketed!(content in input);
    let lits = Punctuated::<LitInt, Token![,]>::parse_terminated(&content).map_err(|e| {
        syn::Error::new(
            e.span(),
            "a shape is a list of integer literals, like `[3, 28, 28]`",
        )
    })?;
    lits.into_iter()
        .map(|lit| {
            let value: usize = lit
                .base10_parse()
                .ok()
                .filter(|&v| v <= MAX_ELEMENTS)
                .ok_or_else(|| {
                    syn::Error::new(
                        lit.span(),
                        format!("dimension `{lit}` is out of range: at most 2^32 (4294967296)"),
                    )
                })?;
            if value == 0 {
                return Err(syn::Error::new(
                    lit.span(),
                    "a dimension must be at least 1",
                ));
            }
            Ok(Dim { value })
        })
        .collect()
}

/// The most elements one tensor (per sample, or a parameter) may have, and the largest
/// integer literal: 2^32. Larger sizes are compile errors, so no size arithmetic in the
/// macro or the runtime can overflow.
pub const MAX_ELEMENTS: usize = 1 << 32;

/// The number of elements of `shape`, saturating at `usize::MAX` (always over the limit).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
}

/// The deepest nesting of brackets and the longest run of operator tokens a description
/// may have. Every stage recurses once per level; these bound the recursion (with the
/// stack `expand` runs on) so that no description can overflow it.
pub const MAX_NESTING: usize = 4096;

/// The most tokens a description may have (64 Ki: a sum of 2,000 terms is 4,000). Every
/// stage is linear in it.
pub const MAX_TOKENS: usize = 1 << 16;

/// Checks the nesting and token limits before anything recursive runs, walking the
/// tokens with an explicit stack; the error points at the first token over a limit.
pub fn check_nesting(input: &proc_macro2::TokenStream) -> syn::Result<()> {
    use proc_macro2::TokenTree;
    let mut stack = vec![input.clone().into_iter()];
    let (mut tokens, mut run) = (0usize, 0usize);
    while let Some(top) = stack.last_mut() {
        let Some(tt) = top.next() else {
            stack.pop();
            continue;
        };
        tokens += 1;
        if tokens > MAX_TOKENS {
            return Err(syn::Error::new(
                tt.span(),
                format!(
                    "the description is longer than {MAX_TOKENS} tokens, the limit of `network!`"
                ),
            ));
        }
        match tt {
            TokenTree::Group(g) => {
                run = 0;
                if stack.len() > MAX_NESTING {
                    return Err(syn::Error::new(
                        g.span_open(),
                        format!("brackets nested deeper than {MAX_NESTING} levels, the limit of `network!`"),
                    ));
                }
                stack.push(g.stream().into_iter());
            }
            TokenTree::Punct(p) => {
                run += 1;
                if run > MAX_NESTING {
                    return Err(syn::Error::new(
                        p.span(),
                        format!(
                            "more than {MAX_NESTING} operators in a row, the limit of `network!`"
                        ),
                    ));
                }
            }
            _ => run = 0,
        }
    }
    Ok(())
}
