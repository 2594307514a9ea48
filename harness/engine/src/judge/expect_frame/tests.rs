//! The frame matcher as a specification: each framing met, cut anywhere,
//! and each way of getting it wrong named.

use super::*;
use proptest::prelude::*;

fn len_frame(prefix: PrefixFormat, body: &[u8]) -> Vec<u8> {
    let mut out = prefix.encode(body.len() as u64).expect("fits");
    out.extend_from_slice(body);
    out
}

fn json_frame(prefix: PrefixFormat, header: &str, body: &[u8]) -> Vec<u8> {
    let mut out = prefix.encode(header.len() as u64).expect("fits");
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

fn length(prefix: PrefixFormat, body: &[u8]) -> FrameMatch {
    FrameMatch::new(FrameWant {
        framing: Framing::Length { prefix },
        body: BodySpec::Literal(body.to_vec()),
        tolerant: false,
        header: HeaderWant::default(),
    })
}

fn json(prefix: PrefixFormat, key: &str, body: BodySpec) -> FrameMatch {
    FrameMatch::new(FrameWant {
        framing: Framing::JsonHeader {
            prefix,
            size_key: key.into(),
        },
        body,
        tolerant: false,
        header: HeaderWant::default(),
    })
}

/// An upload's header: the size under "size" or "filesize", the name
/// under "filename" or "file_name", the md5 judged when sent.
fn upload(body: &[u8]) -> FrameMatch {
    FrameMatch::new(FrameWant {
        framing: Framing::JsonHeader {
            prefix: PrefixFormat::I32Le,
            size_key: "size".into(),
        },
        body: BodySpec::Literal(body.to_vec()),
        tolerant: false,
        header: HeaderWant {
            other_size_keys: vec!["filesize".into()],
            fields: vec![FieldWant {
                keys: vec!["filename".into(), "file_name".into()],
                value: "回顾.mp4".into(),
                what: "the file's name",
            }],
            md5: Md5Want::WhenSent,
        },
    })
}

#[test]
fn an_upload_header_takes_any_accepted_size_key_and_the_file_name() {
    let mut m = upload(b"abc");
    let header = r#"{"filename": "回顾.mp4", "filesize": 3}"#;
    let bytes = json_frame(PrefixFormat::I32Le, header, b"abc");
    assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
}

#[test]
fn an_upload_header_naming_another_file_is_a_miss_that_quotes_both() {
    let mut m = upload(b"abc");
    let header = r#"{"file_name": "/tmp/x/回顾.mp4", "size": 3}"#;
    let p = m.feed(&json_frame(PrefixFormat::I32Le, header, b"abc"));
    let FrameProgress::Mismatch(miss) = p else {
        panic!("{p:?}")
    };
    let words = miss.to_string();
    assert!(
        words.contains("\"file_name\" is \"/tmp/x/回顾.mp4\""),
        "{words}"
    );
    assert!(words.contains("the file's name, \"回顾.mp4\""), "{words}");
}

#[test]
fn an_md5_that_is_not_the_body_s_is_a_miss_once_the_body_is_in() {
    let mut m = upload(b"abc");
    let header =
        r#"{"filename": "回顾.mp4", "size": 3, "md5": "00000000000000000000000000000000"}"#;
    let p = m.feed(&json_frame(PrefixFormat::I32Le, header, b"abc"));
    let FrameProgress::Mismatch(FrameMiss::Md5 { actual, .. }) = p else {
        panic!("{p:?}")
    };
    assert_eq!(actual, "900150983cd24fb0d6963f7d28e17f72");
    let mut m = upload(b"abc");
    let header =
        r#"{"filename": "回顾.mp4", "size": 3, "md5": "900150983CD24FB0D6963F7D28E17F72"}"#;
    let bytes = json_frame(PrefixFormat::I32Le, header, b"abc");
    assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
}

/// [`upload`] framed as `framing`.
fn upload_framed(framing: Framing, body: &[u8]) -> FrameMatch {
    FrameMatch::new(FrameWant {
        framing,
        ..upload(body).want
    })
}

#[test]
fn a_bare_json_header_ends_at_its_closing_brace_and_is_answered_before_the_body() {
    let framing = Framing::BareJson {
        size_key: "size".into(),
        ready: Some(b"200".to_vec()),
    };
    let mut m = upload_framed(framing, b"abc");
    let header = r#"{"filename": "回顾.mp4", "filesize": 3}"#;
    let (p, _) = feed_cut(&mut m, header.as_bytes(), &[5, 20]);
    assert_eq!(
        p,
        FrameProgress::Reply {
            used: header.len() - 20,
            bytes: b"200".to_vec()
        }
    );
    assert_eq!(m.feed(b"abc"), FrameProgress::Done { used: 3 });
}

#[test]
fn a_bare_json_header_leaves_the_bytes_after_it_to_the_body() {
    let framing = Framing::BareJson {
        size_key: "size".into(),
        ready: None,
    };
    let mut m = upload_framed(framing, b"abc");
    let bytes = r#"{"filename": "回顾.mp4", "size": 3}abc"#.as_bytes();
    assert_eq!(m.feed(bytes), FrameProgress::Done { used: bytes.len() });
}

#[test]
fn a_struct_header_is_a_padded_name_and_a_little_endian_size() {
    let mut bytes = "回顾.mp4".as_bytes().to_vec();
    bytes.resize(STRUCT_NAME, 0);
    bytes.extend_from_slice(&3i64.to_le_bytes());
    bytes.extend_from_slice(b"abc");
    let mut m = upload_framed(Framing::Struct128sl, b"abc");
    let (p, _) = feed_cut(&mut m, &bytes, &[1, 130]);
    assert!(matches!(p, FrameProgress::Done { .. }), "{p:?}");
    let mut wrong = bytes.clone();
    wrong[STRUCT_NAME] = 4;
    let mut m = upload_framed(Framing::Struct128sl, b"abc");
    // A size of 4 waits for a fourth byte; the end of the stream
    // names the size wrong.
    assert_eq!(m.feed(&wrong), FrameProgress::NeedMore);
    let miss = m.cut_short();
    assert!(
        matches!(miss, Some(FrameMiss::WrongSize { .. })),
        "{miss:?}"
    );
}

#[test]
fn an_upload_header_counted_in_characters_is_named_so() {
    let mut m = upload(b"abcdef");
    let header = r#"{"filename": "回顾.mp4", "filesize": 6}"#;
    let mut bytes = PrefixFormat::I32Le
        .encode(header.chars().count() as u64)
        .expect("fits");
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(b"abcdef");
    let p = m.feed(&bytes);
    assert_eq!(
        p,
        FrameProgress::Mismatch(FrameMiss::CountsCharacters {
            chars: header.chars().count(),
            bytes: header.len()
        })
    );
}

/// Feeds `bytes` cut at `cuts` (offsets, in order); the progress of
/// the last feed, and the bytes used before it.
fn feed_cut(m: &mut FrameMatch, bytes: &[u8], cuts: &[usize]) -> (FrameProgress, usize) {
    let mut from = 0;
    let mut edges: Vec<usize> = cuts.iter().copied().filter(|&c| c < bytes.len()).collect();
    edges.push(bytes.len());
    for to in edges {
        if to <= from {
            continue;
        }
        match m.feed(&bytes[from..to]) {
            FrameProgress::NeedMore => from = to,
            p => return (p, from),
        }
    }
    (FrameProgress::NeedMore, from)
}

#[test]
fn a_length_frame_is_done_at_its_last_body_byte_and_leaves_what_follows() {
    let mut m = length(PrefixFormat::I32Le, b"total 0\n");
    let mut bytes = len_frame(PrefixFormat::I32Le, b"total 0\n");
    bytes.extend_from_slice(b"NEXT");
    assert_eq!(m.feed(&bytes), FrameProgress::Done { used: 12 });
}

#[test]
fn an_empty_body_is_done_with_its_prefix() {
    let mut m = length(PrefixFormat::U32Be, b"");
    assert_eq!(m.feed(&[0, 0, 0, 0]), FrameProgress::Done { used: 4 });
}

#[test]
fn a_prefix_in_the_other_byte_order_is_named_with_the_param_that_fits() {
    let mut m = length(PrefixFormat::I32Le, b"hello");
    let p = m.feed(&len_frame(PrefixFormat::I32Be, b"hello"));
    let FrameProgress::Mismatch(miss) = p else {
        panic!("{p:?}")
    };
    assert_eq!(
        miss,
        FrameMiss::WrongLength {
            claimed: 5 << 24,
            expected: 5,
            other: Some(PrefixFormat::I32Be)
        }
    );
    assert!(miss.to_string().contains("--param prefix=i32be"), "{miss}");
}

#[test]
fn a_wider_prefix_than_configured_is_named() {
    let mut m = length(PrefixFormat::I32Be, b"hello");
    let FrameProgress::Mismatch(miss) = m.feed(&len_frame(PrefixFormat::I64Be, b"hello")) else {
        panic!()
    };
    assert!(miss.to_string().contains("prefix=i64be"), "{miss}");
}

#[test]
fn a_wider_prefix_is_named_however_the_answer_was_cut() {
    let bytes = len_frame(PrefixFormat::I64Le, b"hello");
    for cut in 1..bytes.len() {
        let mut m = length(PrefixFormat::I32Le, b"hello");
        let (p, _) = feed_cut(&mut m, &bytes, &[cut]);
        let FrameProgress::Mismatch(miss) = p else {
            panic!("cut at {cut}: {p:?}")
        };
        assert!(
            miss.to_string().contains("prefix=i64le"),
            "cut at {cut}: {miss}"
        );
    }
}

#[test]
fn a_wider_prefix_before_a_body_shorter_than_its_high_half_is_named() {
    let bytes = len_frame(PrefixFormat::I64Le, b"hi");
    for cut in 1..bytes.len() {
        let mut m = length(PrefixFormat::U32Le, b"hi");
        let (p, _) = feed_cut(&mut m, &bytes, &[cut]);
        let FrameProgress::Mismatch(miss) = p else {
            panic!("cut at {cut}: {p:?}")
        };
        assert!(
            miss.to_string().contains("prefix=i64le"),
            "cut at {cut}: {miss}"
        );
    }
}

#[test]
fn a_header_length_in_the_other_byte_order_is_named() {
    let mut m = json(PrefixFormat::I32Le, "size", BodySpec::Literal(Vec::new()));
    let bytes = json_frame(PrefixFormat::I32Be, r#"{"size": 0}"#, b"");
    let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
        panic!()
    };
    assert!(miss.to_string().contains("--param prefix=i32be"), "{miss}");
}

fn decimal(body: BodySpec) -> FrameMatch {
    FrameMatch::new(FrameWant {
        framing: Framing::Decimal {
            ready: "recv_ready".into(),
        },
        body,
        tolerant: false,
        header: HeaderWant::default(),
    })
}

fn reply(used: usize, word: &str) -> FrameProgress {
    FrameProgress::Reply {
        used,
        bytes: word.as_bytes().to_vec(),
    }
}

#[test]
fn a_decimal_length_asks_for_the_ready_word_and_then_takes_the_body() {
    let mut m = decimal(BodySpec::Literal(b"hello".to_vec()));
    assert_eq!(m.feed(b"5"), reply(1, "recv_ready"));
    assert_eq!(m.digits(), Some(&b"5"[..]));
    assert_eq!(m.feed(b"hel"), FrameProgress::NeedMore);
    assert_eq!(m.feed(b"loNEXT"), FrameProgress::Done { used: 2 });
}

#[test]
fn the_digits_of_a_decimal_length_may_come_in_pieces() {
    let mut m = decimal(BodySpec::Repeated {
        pattern: b"x".to_vec(),
        len: 4194304,
    });
    assert_eq!(m.feed(b"41"), FrameProgress::NeedMore);
    assert_eq!(m.feed(b"94304"), reply(5, "recv_ready"));
}

#[test]
fn a_decimal_length_of_zero_is_whole_once_answered() {
    let mut m = decimal(BodySpec::Literal(Vec::new()));
    assert_eq!(m.feed(b"0"), reply(1, "recv_ready"));
    assert_eq!(m.feed(&[]), FrameProgress::Done { used: 0 });
}

#[test]
fn a_decimal_length_that_is_not_the_body_s_is_a_wrong_length() {
    let mut m = decimal(BodySpec::Literal(b"hello".to_vec()));
    let FrameProgress::Mismatch(miss) = m.feed(b"14") else {
        panic!()
    };
    assert_eq!(
        miss.to_string(),
        "the prefix reads 14 where the answer has 5 bytes"
    );
    // Digits that begin the length and stop: the sender waits.
    let mut m = decimal(BodySpec::Literal(vec![b'x'; 20]));
    assert_eq!(m.feed(b"2"), FrameProgress::NeedMore);
    assert!(matches!(
        m.cut_short(),
        Some(FrameMiss::WrongLength { claimed: 2, .. })
    ));
}

#[test]
fn a_body_right_behind_the_decimal_length_did_not_wait_for_the_ready_word() {
    let mut m = decimal(BodySpec::Literal(b"hello".to_vec()));
    let FrameProgress::Mismatch(miss) = m.feed(b"5hello") else {
        panic!()
    };
    assert!(
        matches!(miss, FrameMiss::BodyBeforeReady { ref after, .. } if after == b"hello"),
        "{miss:?}"
    );
    assert!(
        miss.to_string().contains("before the client answered"),
        "{miss}"
    );
}

#[test]
fn a_binary_prefix_where_digits_are_expected_names_its_format() {
    let mut m = decimal(BodySpec::Literal(b"hello".to_vec()));
    let FrameProgress::Mismatch(miss) = m.feed(&len_frame(PrefixFormat::I32Le, b"hello")) else {
        panic!()
    };
    assert!(miss.to_string().contains("--param prefix=i32le"), "{miss}");
}

#[test]
fn decimal_digits_where_a_binary_prefix_is_expected_name_prefix_decimal() {
    for (body, sent) in [
        (BodySpec::Literal(b"hello".to_vec()), &b"5"[..]),
        (BodySpec::Literal(vec![b'x'; 20]), &b"20"[..]),
        (
            BodySpec::Repeated {
                pattern: b"x".to_vec(),
                len: 4194304,
            },
            &b"4194304"[..],
        ),
    ] {
        for cut in 1..=sent.len() {
            let m = FrameMatch::new(FrameWant {
                framing: Framing::Length {
                    prefix: PrefixFormat::I32Le,
                },
                body: body.clone(),
                tolerant: false,
                header: HeaderWant::default(),
            });
            let mut m = m;
            let (p, _) = feed_cut(&mut m, sent, &[cut]);
            let FrameProgress::Mismatch(miss) = p else {
                panic!("{sent:?} cut at {cut}: {p:?}")
            };
            assert!(
                miss.to_string().contains("--param prefix=decimal"),
                "{miss}"
            );
        }
    }
    // The digits with the body behind them say the same.
    let mut m = length(PrefixFormat::I32Le, b"hello");
    let FrameProgress::Mismatch(miss) = m.feed(b"5hello") else {
        panic!()
    };
    assert!(
        miss.to_string().contains("--param prefix=decimal"),
        "{miss}"
    );
    // Digits that stop short of the length, then nothing.
    let mut m = length(PrefixFormat::I32Le, &[b'x'; 20]);
    assert_eq!(m.feed(b"2"), FrameProgress::NeedMore);
    assert!(m
        .cut_short()
        .is_some_and(|miss| miss.to_string().contains("--param prefix=decimal")));
}

#[test]
fn a_tolerant_binary_frame_answers_a_decimal_length_with_ok_and_says_so() {
    let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
    assert_eq!(m.feed(b"5"), reply(1, READY));
    assert_eq!(m.feed(b"hello"), FrameProgress::Done { used: 5 });
    assert!(m
        .tolerated()
        .is_some_and(|t| t.contains("decimal digits") && t.contains("i32le")));
}

fn tolerant(mut m: FrameMatch) -> FrameMatch {
    m.want.tolerant = true;
    m
}

#[test]
fn a_tolerant_frame_takes_the_known_variants_and_says_which() {
    let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
    assert_eq!(
        m.feed(&len_frame(PrefixFormat::I32Be, b"hello")),
        FrameProgress::Done { used: 9 }
    );
    assert!(m.tolerated().is_some_and(|t| t.contains("i32be")));

    let bytes = len_frame(PrefixFormat::I64Le, b"hello");
    for cut in 1..bytes.len() {
        let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
        let (p, before) = feed_cut(&mut m, &bytes, &[cut]);
        assert_eq!(
            p,
            FrameProgress::Done {
                used: bytes.len() - before
            },
            "cut {cut}"
        );
        assert!(m.tolerated().is_some_and(|t| t.contains("8 bytes")));
    }

    let mut m = tolerant(json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(b"abc".to_vec()),
    ));
    let bytes = json_frame(PrefixFormat::I32Le, r#"{"data_size": 3}"#, b"abc");
    assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
    assert!(m.tolerated().is_some_and(|t| t.contains("data_size")));

    let mut m = tolerant(json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(b"abc".to_vec()),
    ));
    let bytes = json_frame(PrefixFormat::I32Le, r#"{"size": "3"}"#, b"abc");
    assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });

    let mut m = tolerant(json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(b"abc".to_vec()),
    ));
    let bytes = json_frame(PrefixFormat::I32Be, r#"{"size": 3}"#, b"abc");
    assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
}

#[test]
fn a_tolerant_frame_still_misses_what_no_variant_explains() {
    let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
    assert!(matches!(
        m.feed(&len_frame(PrefixFormat::I32Le, b"hellO")),
        FrameProgress::Mismatch(FrameMiss::Body { offset: 4, .. })
    ));
    let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
    assert!(matches!(
        m.feed(&[9, 0, 0, 0]),
        FrameProgress::Mismatch(FrameMiss::WrongLength { .. })
    ));
}

#[test]
fn a_body_that_differs_names_the_first_differing_byte() {
    let mut m = length(PrefixFormat::I32Le, b"abcdef");
    let FrameProgress::Mismatch(miss) = m.feed(&len_frame(PrefixFormat::I32Le, b"abcXef")) else {
        panic!()
    };
    assert!(
        matches!(
            miss,
            FrameMiss::Body {
                offset: 3,
                expected: b'd',
                got: b'X',
                ..
            }
        ),
        "{miss:?}"
    );
}

#[test]
fn a_json_header_with_the_size_key_then_the_body() {
    let body = b"a\nb\n";
    let mut m = json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(body.to_vec()),
    );
    let bytes = json_frame(PrefixFormat::I32Le, r#"{"size": 4, "cmd": "ls"}"#, body);
    assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
    assert_eq!(
        m.header().and_then(|h| h.get("cmd")),
        Some(&Value::from("ls"))
    );
}

#[test]
fn a_size_under_another_key_names_that_key() {
    let mut m = json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(b"abc".to_vec()),
    );
    let bytes = json_frame(PrefixFormat::I32Le, r#"{"filesize": 3}"#, b"abc");
    let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
        panic!()
    };
    assert!(
        miss.to_string().contains("--param size_key=filesize"),
        "{miss}"
    );
}

#[test]
fn a_size_that_frames_another_body_rightly_says_the_body_is_another() {
    // The command "printf '回顾 review\n'" decoded as GBK and encoded
    // as UTF-8 on its way to the shell: its output changed, and the
    // header counts the output it got.
    let asked = "回顾 review\n".as_bytes();
    let ran = "鍥為【 review\n".as_bytes();
    let mut m = json(
        PrefixFormat::I32Le,
        "total_size",
        BodySpec::Literal(asked.to_vec()),
    );
    let header = format!(r#"{{"total_size": {}}}"#, ran.len());
    let bytes = json_frame(PrefixFormat::I32Le, &header, ran);
    let (progress, _) = feed_cut(&mut m, &bytes, &[3, 20, bytes.len() - 1]);
    let FrameProgress::Mismatch(miss) = progress else {
        panic!("{progress:?}")
    };
    assert_eq!(
        miss.to_string(),
        r#"the header's "total_size" is 17 and as many bytes follow, but they are not the body expected: "\xe9\x8d\xa5\xe7\x82\xba\xe3\x80\x90 review\n" where it is "\xe5\x9b\x9e\xe9\xa1\xbe review\n" (14 bytes); its ASCII bytes are all there, in order, and only the others differ"#
    );
}

#[test]
fn a_size_short_of_the_body_it_begins_is_a_wrong_size() {
    let mut m = json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(b"out\nerr\n".to_vec()),
    );
    let bytes = json_frame(PrefixFormat::I32Le, r#"{"size": 4}"#, b"out\nerr\n");
    let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
        panic!()
    };
    assert_eq!(
        miss.to_string(),
        r#"the header's "size" is 4 where the body has 8 bytes"#
    );
}

#[test]
fn a_wrong_size_whose_bytes_never_all_come_is_a_wrong_size() {
    let mut m = json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(b"abc".to_vec()),
    );
    let bytes = json_frame(PrefixFormat::I32Le, r#"{"size": 9}"#, b"xyz");
    assert_eq!(m.feed(&bytes), FrameProgress::NeedMore);
    assert_eq!(
        m.cut_short().expect("short").to_string(),
        r#"the header's "size" is 9 where the body has 3 bytes"#
    );
}

#[test]
fn a_header_in_another_encoding_than_utf8_is_named_as_such() {
    // json.dumps(..., ensure_ascii=False).encode("gbk")
    let header = b"{\"co\": \"\xba\xbd\xcc\xec\", \"size\": 1}";
    let mut bytes = PrefixFormat::I32Le
        .encode(header.len() as u64)
        .expect("fits");
    bytes.extend_from_slice(header);
    bytes.push(b'x');
    let mut m = json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(b"x".to_vec()),
    );
    let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
        panic!()
    };
    assert_eq!(
        miss.to_string(),
        r#"the header "{\"co\": \"\xba\xbd\xcc\xec\", \"size\": 1}" is not a JSON object: its bytes are not UTF-8 (from byte 8: "\xba\xbd\xcc\xec\", \"size"... (17 bytes in all))"#
    );
}

#[test]
fn a_tolerant_frame_reads_a_header_that_is_not_utf8_and_says_so() {
    let header = b"{\"co\": \"\xba\xbd\", \"size\": 1}";
    let mut bytes = PrefixFormat::I32Le
        .encode(header.len() as u64)
        .expect("fits");
    bytes.extend_from_slice(header);
    bytes.push(b'x');
    let mut m = tolerant(json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(b"x".to_vec()),
    ));
    assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
    assert_eq!(m.tolerated(), Some("the header's bytes are not UTF-8"));
}

#[test]
fn a_header_length_that_counts_characters_is_named_as_such() {
    let header = r#"{"size": 2, "out": "é"}"#;
    let mut bytes = PrefixFormat::I32Le
        .encode(header.chars().count() as u64)
        .unwrap();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(b"ok");
    let mut m = json(
        PrefixFormat::I32Le,
        "size",
        BodySpec::Literal(b"ok".to_vec()),
    );
    let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
        panic!()
    };
    assert_eq!(
        miss,
        FrameMiss::CountsCharacters {
            chars: header.chars().count(),
            bytes: header.len()
        }
    );
}

#[test]
fn a_header_that_is_not_json_shows_it() {
    let mut m = json(PrefixFormat::I32Le, "size", BodySpec::Literal(Vec::new()));
    let FrameProgress::Mismatch(miss) = m.feed(&json_frame(PrefixFormat::I32Le, "size=3", b""))
    else {
        panic!()
    };
    assert!(matches!(miss, FrameMiss::BadHeader { .. }), "{miss:?}");
}

#[test]
fn a_lying_header_length_is_refused_without_reading_it() {
    let mut m = json(PrefixFormat::I32Le, "size", BodySpec::Literal(Vec::new()));
    let p = m.feed(&i32::MAX.to_le_bytes());
    assert_eq!(
        p,
        FrameProgress::Mismatch(FrameMiss::HeaderLength {
            claimed: i64::from(i32::MAX),
            other: None
        })
    );
}

#[test]
fn a_stream_that_ends_early_says_where_the_answer_stopped() {
    let mut m = length(PrefixFormat::I32Le, b"abcdef");
    let bytes = len_frame(PrefixFormat::I32Le, b"abcdef");
    assert_eq!(m.feed(&bytes[..7]), FrameProgress::NeedMore);
    let miss = m.cut_short().expect("short");
    assert_eq!(
        miss.to_string(),
        "the answer stopped after 3 of the body's 6 bytes"
    );
    let mut fresh = length(PrefixFormat::I32Le, b"x");
    assert_eq!(fresh.feed(&[1]), FrameProgress::NeedMore);
    assert!(fresh
        .cut_short()
        .expect("short")
        .to_string()
        .contains("after 1 of the prefix's 4 bytes"));
}

#[test]
fn a_seeded_body_is_the_same_at_every_offset_and_differs_between_seeds() {
    let a = BodySpec::Seeded { seed: 7, len: 1000 };
    let b = BodySpec::Seeded { seed: 8, len: 1000 };
    let mut whole = vec![0u8; 1000];
    assert_eq!(a.fill(0, &mut whole), 1000);
    let mut tail = vec![0u8; 10];
    assert_eq!(a.fill(995, &mut tail), 5);
    assert_eq!(&tail[..5], &whole[995..]);
    let mut other = vec![0u8; 1000];
    b.fill(0, &mut other);
    assert_ne!(whole, other);
}

#[test]
fn a_repeated_body_is_its_pattern_over_and_over_cut_at_its_length() {
    let body = BodySpec::Repeated {
        pattern: b"abc\n".to_vec(),
        len: 10,
    };
    let mut out = [0u8; 12];
    assert_eq!(body.fill(0, &mut out), 10);
    assert_eq!(&out[..10], b"abc\nabc\nab");
}

#[test]
fn a_large_seeded_body_streams_through_and_is_digested() {
    let body = BodySpec::Seeded {
        seed: 42,
        len: 1 << 20,
    };
    let mut m = json(PrefixFormat::U32Be, "size", body.clone());
    let header = format!(r#"{{"size": {}}}"#, 1 << 20);
    let mut head = PrefixFormat::U32Be.encode(header.len() as u64).unwrap();
    head.extend_from_slice(header.as_bytes());
    assert_eq!(m.feed(&head), FrameProgress::NeedMore);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    let mut last = FrameProgress::NeedMore;
    let mut whole = Md5::new();
    while offset < body.len() {
        let n = body.fill(offset, &mut chunk);
        whole.update(&chunk[..n]);
        last = m.feed(&chunk[..n]);
        offset += n as u64;
    }
    assert_eq!(last, FrameProgress::Done { used: 64 * 1024 });
    let expected: String = whole
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(m.body_digest(), expected);
}

proptest! {
    /// However the bytes are cut, the verdict is the same as for the
    /// whole frame fed at once.
    #[test]
    fn the_verdict_does_not_depend_on_how_the_bytes_were_cut(
        body in proptest::collection::vec(any::<u8>(), 0..64),
        noise in proptest::collection::vec(any::<u8>(), 0..4),
        flip in proptest::option::of(0usize..80),
        cuts in proptest::collection::vec(0usize..120, 0..8),
        use_json in any::<bool>(),
        sent_wide in any::<bool>(),
    ) {
        let prefix = PrefixFormat::I32Le;
        let sent = if sent_wide { PrefixFormat::I64Le } else { prefix };
        let mut bytes = if use_json {
            json_frame(sent, &format!(r#"{{"size": {}, "é": 1}}"#, body.len()), &body)
        } else {
            len_frame(sent, &body)
        };
        if let Some(i) = flip {
            if i < bytes.len() {
                bytes[i] ^= 0x20;
            }
        }
        bytes.extend_from_slice(&noise);
        let make = || if use_json {
            json(prefix, "size", BodySpec::Literal(body.clone()))
        } else {
            length(prefix, &body)
        };
        let mut whole = make();
        let at_once = whole.feed(&bytes);
        let mut sorted = cuts.clone();
        sorted.sort_unstable();
        let mut cut = make();
        let (in_pieces, before) = feed_cut(&mut cut, &bytes, &sorted);
        match (&at_once, &in_pieces) {
            (FrameProgress::Done { used: a }, FrameProgress::Done { used: b }) => {
                prop_assert_eq!(*a, before + *b);
            }
            (FrameProgress::Mismatch(a), FrameProgress::Mismatch(b)) => match (a, b) {
                // The bytes shown after a difference are those the
                // feed held; where it is and what it is do not vary.
                (
                    FrameMiss::Body { offset, expected, got, .. },
                    FrameMiss::Body { offset: o, expected: e, got: g, .. },
                ) => prop_assert_eq!((offset, expected, got), (o, e, g)),
                (a, b) => prop_assert_eq!(a, b),
            },
            (FrameProgress::NeedMore, FrameProgress::NeedMore) => {}
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
