bp::network! {
    struct Net {
        input x: [4];
        let h = linear(x, 3);
    }
}

fn main() {}
