//! The README's C quick-start is exactly the example the test suite compiles and runs.

#[test]
fn readme_quickstart_is_the_tested_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/examples/c/quickstart.c")).unwrap();
    let marker = readme
        .find("<!-- quickstart")
        .expect("quick-start marker in README.md");
    let rest = &readme[marker..];
    let start = rest.find("```c\n").expect("a ```c block after the marker") + 5;
    let end = start + rest[start..].find("```").expect("the block ends");
    assert_eq!(
        &rest[start..end],
        example,
        "README quick-start differs from the example"
    );
}
