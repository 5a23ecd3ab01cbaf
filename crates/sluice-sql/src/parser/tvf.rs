//! Window table functions in Flink's syntax, `TABLE(TUMBLE(TABLE t, DESCRIPTOR(c), size))`,
//! rewritten token by token into table function calls DataFusion's parser and planner
//! accept: `TUMBLE('t', 'c', size)`. The planner resolves the quoted names
//! ([`crate::catalog`]).
//!
//! `PARTITION BY` of `SESSION` becomes a fourth-from-last quoted argument
//! `'partition:a,b'`, so the rewritten call stays positional.

use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};

/// The window table functions Sluice knows.
pub const WINDOW_FUNCTIONS: [&str; 4] = ["TUMBLE", "HOP", "CUMULATE", "SESSION"];

fn word_is(t: &Token, name: &str) -> bool {
    matches!(t, Token::Word(Word { value, .. }) if value.eq_ignore_ascii_case(name))
}

fn is_window_function(t: &Token) -> bool {
    WINDOW_FUNCTIONS.iter().any(|f| word_is(t, f))
}

fn next_solid(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
}

/// The index of the `)` matching the `(` at `open`.
fn matching_paren(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn quoted(name: String, like: &TokenWithSpan) -> TokenWithSpan {
    TokenWithSpan::new(Token::SingleQuotedString(name), like.span)
}

fn ident_of(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    }
}

/// Rewrites the arguments of one window function call (the tokens between its
/// parentheses).
fn rewrite_args(args: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let t = &args[i];
        if matches!(&t.token, Token::Word(w) if w.keyword == Keyword::TABLE) {
            if let Some(n) = next_solid(args, i + 1) {
                if let Some(name) = ident_of(&args[n].token) {
                    // A dotted name (catalog.db.table) stays one string.
                    let mut full = name;
                    let mut j = n + 1;
                    while j + 1 < args.len() && args[j].token == Token::Period {
                        if let Some(part) = ident_of(&args[j + 1].token) {
                            full.push('.');
                            full.push_str(&part);
                            j += 2;
                        } else {
                            break;
                        }
                    }
                    out.push(quoted(full, t));
                    i = j;
                    // SESSION(TABLE t PARTITION BY a, b, ...)
                    if let Some(p) = next_solid(args, i) {
                        if matches!(&args[p].token, Token::Word(w) if w.keyword == Keyword::PARTITION)
                        {
                            let mut cols = Vec::new();
                            let mut k = next_solid(args, p + 1).map_or(args.len(), |b| b + 1);
                            // Columns until the comma before DESCRIPTOR.
                            while let Some(c) = next_solid(args, k) {
                                if word_is(&args[c].token, "DESCRIPTOR") {
                                    break;
                                }
                                if let Some(col) = ident_of(&args[c].token) {
                                    cols.push(col);
                                }
                                k = c + 1;
                            }
                            out.push(TokenWithSpan::new(Token::Comma, args[p].span));
                            out.push(quoted(format!("partition:{}", cols.join(",")), &args[p]));
                            out.push(TokenWithSpan::new(Token::Comma, args[p].span));
                            // Skip to DESCRIPTOR; its comma was consumed with the columns.
                            i = (p..args.len())
                                .find(|&x| word_is(&args[x].token, "DESCRIPTOR"))
                                .unwrap_or(args.len());
                        }
                    }
                    continue;
                }
            }
        }
        if word_is(&t.token, "DESCRIPTOR") {
            if let Some(open) = next_solid(args, i + 1) {
                if args[open].token == Token::LParen {
                    if let Some(close) = matching_paren(args, open) {
                        let cols: Vec<String> = args[open + 1..close]
                            .iter()
                            .filter_map(|a| ident_of(&a.token))
                            .collect();
                        out.push(quoted(cols.join(","), t));
                        i = close + 1;
                        continue;
                    }
                }
            }
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

/// Rewrites every `TABLE(<window function>(...))` of a statement.
pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if matches!(&t.token, Token::Word(w) if w.keyword == Keyword::TABLE) {
            let open = next_solid(&tokens, i + 1);
            let func = open.and_then(|o| next_solid(&tokens, o + 1));
            let inner_open = func.and_then(|f| next_solid(&tokens, f + 1));
            if let (Some(open), Some(func), Some(inner_open)) = (open, func, inner_open) {
                if tokens[open].token == Token::LParen
                    && is_window_function(&tokens[func].token)
                    && tokens[inner_open].token == Token::LParen
                {
                    if let (Some(inner_close), Some(close)) = (
                        matching_paren(&tokens, inner_open),
                        matching_paren(&tokens, open),
                    ) {
                        out.push(tokens[func].clone());
                        out.push(tokens[inner_open].clone());
                        out.extend(rewrite_args(&tokens[inner_open + 1..inner_close]));
                        out.push(tokens[inner_close].clone());
                        i = close + 1;
                        continue;
                    }
                }
            }
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion_sql::sqlparser::dialect::GenericDialect;
    use datafusion_sql::sqlparser::tokenizer::Tokenizer;

    fn rewritten(sql: &str) -> String {
        let tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        rewrite(tokens)
            .into_iter()
            .map(|t| t.token.to_string())
            .collect()
    }

    #[test]
    fn rewrites_window_table_functions() {
        assert_eq!(
            rewritten("SELECT * FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))"),
            "SELECT * FROM TUMBLE('bid', 'dateTime', INTERVAL '10' SECOND)"
        );
        assert_eq!(
            rewritten("FROM TABLE(\n HOP( TABLE s.bid , DESCRIPTOR( t ), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) AS w"),
            "FROM HOP( 's.bid' , 't', INTERVAL '2' SECOND, INTERVAL '10' SECOND) AS w"
        );
        assert_eq!(
            rewritten("TABLE(SESSION(TABLE bid PARTITION BY auction, bidder, DESCRIPTOR(ts), INTERVAL '5' MINUTE))"),
            "SESSION('bid','partition:auction,bidder','ts', INTERVAL '5' MINUTE)"
        );
    }

    #[test]
    fn leaves_other_table_keywords_alone() {
        assert_eq!(
            rewritten("SELECT * FROM TABLE(f(1))"),
            "SELECT * FROM TABLE(f(1))"
        );
        assert_eq!(
            rewritten("CREATE TABLE t (a INT)"),
            "CREATE TABLE t (a INT)"
        );
    }
}
