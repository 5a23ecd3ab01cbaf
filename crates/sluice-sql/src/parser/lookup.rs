//! Lookup joins in Flink's syntax, `JOIN dim FOR SYSTEM_TIME AS OF s.proc_time AS d`,
//! rewritten token by token into a table function DataFusion plans:
//! `JOIN __lookup('dim', 's.proc_time') AS d`. The planner turns a join with such a side into a lookup
//! join ([`crate::planner`]); the time is the processing time, as Flink's lookup joins
//! use it.

use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};

/// The table function a lookup table becomes.
pub const LOOKUP_FUNCTION: &str = "__lookup";

fn is_keyword(t: &TokenWithSpan, keyword: Keyword) -> bool {
    matches!(&t.token, Token::Word(w) if w.keyword == keyword)
}

fn is_word(t: &TokenWithSpan, name: &str) -> bool {
    matches!(&t.token, Token::Word(Word { value, .. }) if value.eq_ignore_ascii_case(name))
}

fn solid(tokens: &[TokenWithSpan]) -> Vec<usize> {
    (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect()
}

/// Rewrites every `name FOR SYSTEM_TIME AS OF column` of a statement.
pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let idx = solid(&tokens);
    // Positions (in `idx`) where `FOR SYSTEM_TIME AS OF` starts.
    let starts: Vec<usize> = (0..idx.len().saturating_sub(3))
        .filter(|&k| {
            is_keyword(&tokens[idx[k]], Keyword::FOR)
                && is_word(&tokens[idx[k + 1]], "SYSTEM_TIME")
                && is_keyword(&tokens[idx[k + 2]], Keyword::AS)
                && is_keyword(&tokens[idx[k + 3]], Keyword::OF)
        })
        .collect();
    if starts.is_empty() {
        return tokens;
    }
    // Token ranges to replace: (first, last inclusive, replacement).
    let mut edits: Vec<(usize, usize, Vec<TokenWithSpan>)> = Vec::new();
    for k in starts {
        // The table name before FOR: `a` or `a.b.c`.
        let mut first = k;
        let mut name = Vec::new();
        while first > 0 {
            let t = &tokens[idx[first - 1]];
            match &t.token {
                Token::Word(w) if name.len() % 2 == 0 => name.push(w.value.clone()),
                Token::Period if name.len() % 2 == 1 => name.push(".".into()),
                _ => break,
            }
            first -= 1;
        }
        if name.is_empty() || name.len() % 2 == 0 {
            continue;
        }
        name.reverse();
        // The time column after OF: `col` or `alias.col`.
        let mut last = k + 4;
        while last + 2 < idx.len()
            && tokens[idx[last + 1]].token == Token::Period
            && matches!(tokens[idx[last + 2]].token, Token::Word(_))
        {
            last += 2;
        }
        if last >= idx.len() || !matches!(tokens[idx[last]].token, Token::Word(_)) {
            continue;
        }
        let span = tokens[idx[first]].span;
        // The time column, `alias.col` or `col`, as written.
        let time: String = (k + 4..=last)
            .map(|j| match &tokens[idx[j]].token {
                Token::Word(w) => w.value.clone(),
                other => other.to_string(),
            })
            .collect();
        let replacement = vec![
            TokenWithSpan::new(Token::make_word(LOOKUP_FUNCTION, None), span),
            TokenWithSpan::new(Token::LParen, span),
            TokenWithSpan::new(Token::SingleQuotedString(name.concat()), span),
            TokenWithSpan::new(Token::Comma, span),
            TokenWithSpan::new(Token::SingleQuotedString(time), span),
            TokenWithSpan::new(Token::RParen, span),
        ];
        edits.push((idx[first], idx[last], replacement));
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    for (first, last, replacement) in edits {
        out.extend_from_slice(&tokens[i..first]);
        out.extend(replacement);
        i = last + 1;
    }
    out.extend_from_slice(&tokens[i..]);
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
            .iter()
            .map(|t| t.token.to_string())
            .collect()
    }

    #[test]
    fn rewrites_lookup_tables_into_a_table_function() {
        assert_eq!(
            rewritten("FROM b JOIN side FOR SYSTEM_TIME AS OF b.p_time AS s ON b.k = s.k"),
            "FROM b JOIN __lookup('side','b.p_time') AS s ON b.k = s.k"
        );
        assert_eq!(
            rewritten("JOIN db.side FOR SYSTEM_TIME AS OF p_time s ON x"),
            "JOIN __lookup('db.side','p_time') s ON x"
        );
        assert_eq!(rewritten("SELECT 1 FOR x"), "SELECT 1 FOR x");
    }
}
